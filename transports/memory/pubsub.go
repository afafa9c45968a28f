package memory

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
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

var (
	_ message.SubscribeInitializer  = (*subscriber)(nil)
	_ transports.Consumer           = (*subscriber)(nil)
	_ transports.ConcurrentConsumer = (*subscriber)(nil)
)

// SubscribeInitialize provisions the group's queue on topic.
func (s *subscriber) SubscribeInitialize(topic string) error {
	_, err := s.t.queue(topic, s.group)
	return err
}

// Subscribe starts one consumer of the group on topic. It delivers one
// message at a time and waits for its Ack or Nack before the next; the
// channel is closed when ctx is done or the subscriber or transport closes.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	err := s.start(ctx, topic, func(ctx context.Context, q *queue) {
		defer close(out)
		for {
			m, ok := q.pop(ctx)
			if !ok || !s.deliver(ctx, q, m, out) {
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Consume is Subscribe with handle run on the consumer's goroutine: see
// transports.Consumer.
func (s *subscriber) Consume(ctx context.Context, topic string, handle func(*message.Message)) (<-chan struct{}, error) {
	done := make(chan struct{})
	err := s.start(ctx, topic, func(ctx context.Context, q *queue) {
		defer close(done)
		for {
			m, ok := q.pop(ctx)
			if !ok {
				return
			}
			if ctx.Err() != nil {
				q.requeue(m) // popped as the subscription ended
				return
			}
			if transports.Handle(ctx, m.Copy(), handle) {
				q.acked()
			} else {
				q.requeue(m)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// start runs consume on the group's queue of topic until ctx is done or the
// subscriber or transport closes.
func (s *subscriber) start(ctx context.Context, topic string, consume func(ctx context.Context, q *queue)) error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	q, err := s.t.queue(topic, s.group)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
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
		defer cancel()
		consume(ctx, q)
	}()
	return nil
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
		q.acked()
		return true
	case <-d.Nacked():
		q.requeue(m)
		return true
	case <-ctx.Done():
		// Acked at the same moment? select picks among ready cases at
		// random: requeueing an acked message would deliver it twice.
		select {
		case <-d.Acked():
			q.acked()
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

// ConsumeConcurrent is Consume with up to limit messages in flight, settled
// in any order: see transports.ConcurrentConsumer. A message nacked goes
// back to the head of the queue; one unsettled when the subscriber or the
// transport closes goes back too.
func (s *subscriber) ConsumeConcurrent(ctx context.Context, topic string, limit int, handle func(*message.Message)) (<-chan struct{}, error) {
	if limit < 1 {
		limit = 1
	}
	done := make(chan struct{})
	err := s.start(ctx, topic, func(ctx context.Context, q *queue) {
		var outcomes sync.WaitGroup
		defer func() {
			outcomes.Wait()
			close(done)
		}()
		slots := make(chan struct{}, limit)
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			m, ok := q.pop(ctx)
			if !ok {
				return
			}
			d := m.Copy()
			d.SetContext(ctx)
			outcomes.Go(func() {
				defer func() { <-slots }()
				select {
				case <-d.Acked():
					q.acked()
				case <-d.Nacked():
					q.requeue(m)
				case <-s.closed:
					s.giveBack(q, m, d)
				case <-s.t.closed:
					s.giveBack(q, m, d)
				}
			})
			handle(d)
		}
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// giveBack returns m to q unless its delivery d was acked after all.
func (s *subscriber) giveBack(q *queue, m, d *message.Message) {
	select {
	case <-d.Acked():
		q.acked()
	default:
		q.requeue(m)
	}
}
