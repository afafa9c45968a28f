package bus

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// inflight counts the messages handed to handlers and not yet finished, so
// that Close can wait for them. Unlike a WaitGroup it refuses new work once
// closing has started.
type inflight struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{} // closed when closing and n is 0
}

func newInflight() *inflight { return &inflight{idle: make(chan struct{})} }

// acquire counts one more message; false once closing started.
func (f *inflight) acquire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.n++
	return true
}

func (f *inflight) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.closing && f.n == 0 {
		close(f.idle)
	}
}

// close refuses new work and returns a channel closed when none is left.
func (f *inflight) close() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closing {
		f.closing = true
		if f.n == 0 {
			close(f.idle)
		}
	}
	return f.idle
}

// drainSubscriber sits between a transport's subscriber and the router. It
// counts each message it hands over in the bus's inflight, and stops handing
// over messages when the bus starts closing, while the subscription itself
// stays open until the handlers finished: closing it earlier would cancel
// their contexts and abandon their acks.
type drainSubscriber struct {
	sub      message.Subscriber
	inflight *inflight
	stopping <-chan struct{} // closed when the bus starts closing
	drained  <-chan struct{} // closed when the bus's handlers finished or were given up on
	once     sync.Once
	closeErr error
}

func (s *drainSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		// out stays open until the bus drained: closing it earlier would end
		// the router's handler and cancel the contexts of in-flight messages.
		defer close(out)
		for {
			select {
			case <-s.stopping:
				<-s.drained
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				if !s.inflight.acquire() {
					m.Nack()
					<-s.drained
					return
				}
				select {
				case out <- m:
				case <-s.stopping:
					s.inflight.release()
					m.Nack()
					<-s.drained
					return
				}
			}
		}
	}()
	return out, nil
}

// Close closes the underlying subscriber once; the router calls it once per
// handler sharing it. While the bus is closing, it first waits for the
// handlers to finish, so that their acks still reach the broker.
func (s *drainSubscriber) Close() error {
	select {
	case <-s.stopping:
		<-s.drained
	default:
	}
	s.once.Do(func() { s.closeErr = s.sub.Close() })
	return s.closeErr
}
