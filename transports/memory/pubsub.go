package memory

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

type publisher struct {
	t      *Transport
	closed chan struct{}
	once   sync.Once
}

func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	return p.t.publish(topic, msgs)
}

func (p *publisher) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

type subscriber struct {
	t      *Transport
	group  string
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

var _ message.SubscribeInitializer = (*subscriber)(nil)

// SubscribeInitialize provisions the group's queue on topic.
func (s *subscriber) SubscribeInitialize(topic string) error {
	_, err := s.t.queue(topic, s.group)
	return err
}

// Subscribe starts one consumer of the group on topic. It delivers one
// message at a time and waits for its Ack or Nack before the next; the
// channel is closed when ctx is done or the subscriber or transport closes.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closed:
		return nil, ErrClosed
	default:
	}
	q, err := s.t.queue(topic, s.group)
	if err != nil {
		return nil, err
	}
	// ctx ends the subscription when the caller's context is done or the
	// subscriber or transport closes.
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		defer cancel()
		select {
		case <-ctx.Done():
		case <-s.closed:
		case <-s.t.closed:
		}
	}()
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		s.consume(ctx, q, out)
	}()
	return out, nil
}

func (s *subscriber) consume(ctx context.Context, q *queue, out chan<- *message.Message) {
	for {
		m, ok := q.pop(ctx)
		if !ok {
			return
		}
		if !s.deliver(ctx, q, m, out) {
			return
		}
	}
}

// deliver hands one copy of m to the consumer and waits for the outcome. It
// returns false when the subscription ends; m is then back in the queue
// unless it was acked.
func (s *subscriber) deliver(ctx context.Context, q *queue, m *message.Message, out chan<- *message.Message) bool {
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := m.Copy()
	d.SetContext(msgCtx)
	select {
	case out <- d:
	case <-ctx.Done():
		q.requeue(m)
		return false
	}
	select {
	case <-d.Acked():
		return true
	case <-d.Nacked():
		q.requeue(m)
		return true
	case <-ctx.Done():
		// Acked at the same moment? select picks among ready cases at
		// random: requeueing an acked message would deliver it twice.
		select {
		case <-d.Acked():
		default:
			q.requeue(m)
		}
		return false
	}
}

// Close ends every subscription of this subscriber and waits for their
// consumers to stop. Messages in flight return to their queue.
func (s *subscriber) Close() error {
	s.once.Do(func() { close(s.closed) })
	s.wg.Wait()
	return nil
}
