package redis

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

type subscriber struct {
	t     *Transport
	group string

	mu     sync.Mutex // guards done, pumps and wg.Add
	closed chan struct{}
	done   bool
	pumps  map[string]*pump // by topic
	wg     sync.WaitGroup
}

var (
	_ message.SubscribeInitializer  = (*subscriber)(nil)
	_ transports.Consumer           = (*subscriber)(nil)
	_ transports.ConcurrentConsumer = (*subscriber)(nil)
)

// SubscribeInitialize creates the group on topic's stream, reading from its
// start.
func (s *subscriber) SubscribeInitialize(topic string) error {
	if topic == "" {
		return errors.New("redis transport: subscribe to an empty topic")
	}
	return s.t.createGroup(context.Background(), s.t.Stream(topic), s.group)
}

// Subscribe consumes topic as the group (creating the group if needed). The
// first Subscribe of a topic on this subscriber starts one Redis consumer;
// each further one adds a worker to it, so that Subscribe called N times (the
// bus's concurrency) handles N entries of each batch at once. The returned
// channel hands over one message at a time and waits for its Ack or Nack
// before the next. It is closed when ctx is done or the subscriber or
// transport closes; acked entries are acknowledged to Redis by then.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	err := s.attach(ctx, topic, func(wctx context.Context, p *pump) { p.work(wctx, out) }, func() { close(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Consume is Subscribe with handle run on the worker's goroutine: see
// transports.Consumer.
func (s *subscriber) Consume(ctx context.Context, topic string, handle func(*message.Message)) (<-chan struct{}, error) {
	done := make(chan struct{})
	err := s.attach(ctx, topic, func(wctx context.Context, p *pump) { p.consume(wctx, handle) }, func() { close(done) })
	if err != nil {
		return nil, err
	}
	return done, nil
}

// ConsumeConcurrent is Consume with up to limit messages unsettled, settled
// in any order: see transports.ConcurrentConsumer. It counts as one worker
// of the topic's consumer, so with no other Subscribe or Consume of the
// topic on this subscriber it keeps stream order as one worker does (see
// the package documentation, "Ordering"): a nacked message is delivered
// again before any later one. Acks are batched into XACKs as for Consume,
// whatever their order. A message unsettled when the subscriber or the
// transport closes is handed back to the group.
func (s *subscriber) ConsumeConcurrent(ctx context.Context, topic string, limit int, handle func(*message.Message)) (<-chan struct{}, error) {
	limit = max(limit, 1)
	done := make(chan struct{})
	err := s.attach(ctx, topic, func(wctx context.Context, p *pump) { p.consumeConcurrent(wctx, limit, handle) }, func() { close(done) })
	if err != nil {
		return nil, err
	}
	return done, nil
}

// attach adds a worker to topic's pump, starting the pump on first use, and
// runs work on it until ctx is done or the subscriber or transport closes.
// The last worker to leave stops the pump, which flushes its acks; ended is
// called after that.
func (s *subscriber) attach(ctx context.Context, topic string, work func(ctx context.Context, p *pump), ended func()) error {
	if topic == "" {
		return errors.New("redis transport: subscribe to an empty topic")
	}
	if err := s.t.createGroup(ctx, s.t.Stream(topic), s.group); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || s.t.isClosed() {
		return ErrClosed
	}
	p := s.pumps[topic]
	if p == nil {
		p = newPump(s.t, topic, s.group, s.t.acquireConsumer(s.t.Stream(topic), s.group))
		if s.pumps == nil {
			s.pumps = map[string]*pump{}
		}
		s.pumps[topic] = p
		p.workers.Add(1) // before the fetch loop starts: it asks strict()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.t.releaseConsumer(p.stream, p.group, p.consumer)
			go func() {
				select {
				case <-s.closed:
				case <-s.t.closed:
				case <-p.ctx.Done():
				}
				p.cancel()
			}()
			p.run()
		}()
	} else {
		p.workers.Add(1)
	}
	wctx, cancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(p.ctx, cancel)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer ended()
		defer cancel()
		defer stopAfter()
		work(wctx, p)
		s.mu.Lock()
		last := p.workers.Add(-1) == 0
		if last && s.pumps[topic] == p {
			delete(s.pumps, topic)
		}
		s.mu.Unlock()
		if last {
			p.cancel()
			<-p.done
		}
	}()
	return nil
}

// Close ends every subscription of this subscriber, flushes their acks and
// waits for them. Entries handed out and not acked stay pending for the
// group: a later subscription of the group in this process takes them over
// at once under the same consumer name, and since they are handed back as
// idle, another consumer of the group claims them within ClaimInterval.
func (s *subscriber) Close() error {
	s.mu.Lock()
	if !s.done {
		s.done = true
		close(s.closed)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.t.forget(s)
	return nil
}
