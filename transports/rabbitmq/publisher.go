package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// publisher is a handle on the transport's shared publishing channels.
type publisher struct {
	t      *Transport
	closed atomic.Bool
}

var _ message.Publisher = (*publisher)(nil)

// Publish sends msgs to topic's exchange and, with confirms on, returns
// once RabbitMQ confirmed every one of them. Messages reach the queues of
// the groups bound to the exchange at that moment; with no group bound they
// are dropped by RabbitMQ. Publish waits for a connection while reconnecting,
// up to Config.PublishTimeout or the first message's context.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	return p.t.pool.publish(msgs[0].Context(), topic, msgs)
}

// Close releases the handle; the shared channels stay with the transport.
func (p *publisher) Close() error {
	p.closed.Store(true)
	return nil
}

// publishPool is a fixed set of confirm-mode channels that every publisher
// of a transport shares. Concurrent publishes on one channel each wait for
// their own deferred confirm, so they do not serialise on one another.
type publishPool struct {
	cfg   *Config
	conn  *connection
	slots []*publishSlot
	next  atomic.Uint64

	declareMu sync.Mutex
	declared  map[string]uint64 // topic → connection generation its exchange was declared on
}

type publishSlot struct {
	mu sync.Mutex
	ch *amqp.Channel
}

func newPublishPool(cfg *Config, conn *connection) *publishPool {
	p := &publishPool{cfg: cfg, conn: conn, slots: make([]*publishSlot, cfg.PublishChannels), declared: map[string]uint64{}}
	for i := range p.slots {
		p.slots[i] = &publishSlot{}
	}
	return p
}

func (p *publishPool) publish(parent context.Context, topic string, msgs []*message.Message) (err error) {
	defer func() {
		if err != nil {
			p.forget(topic) // re-declare next time, in case the exchange was deleted
		}
	}()
	ctx, cancel := context.WithTimeout(parent, p.cfg.PublishTimeout)
	defer cancel()
	if err := p.declare(ctx, topic); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	slot := p.slots[p.next.Add(1)%uint64(len(p.slots))]
	ch, err := slot.channel(ctx, p)
	if err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	exchange := ExchangeName(topic)
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		pub := toPublishing(m, true)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "", false, false, pub)
		if err != nil {
			return fmt.Errorf("rabbitmq: publish message %s to %s: %w (not sent; safe to retry)", m.UUID, topic, err)
		}
		if dc != nil {
			confirms = append(confirms, dc)
		}
	}
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("rabbitmq: publish message %s to %s: no confirm from the broker: %w (it may or may not have the message; retrying can duplicate it)", msgs[i].UUID, topic, err)
		case !ok:
			return fmt.Errorf("rabbitmq: publish message %s to %s: %w", msgs[i].UUID, topic, errNotConfirmed)
		}
	}
	return nil
}

var errNotConfirmed = errors.New("the broker did not confirm the message (nacked, or the channel closed first; retrying can duplicate it)")

// declare declares topic's exchange once per connection, on a channel of
// its own: amqp091 does not keep an RPC such as exchange.declare from
// slipping between the frames of a concurrent publish on the same channel,
// which makes RabbitMQ close the whole connection (UNEXPECTED_FRAME).
func (p *publishPool) declare(ctx context.Context, topic string) error {
	p.declareMu.Lock()
	defer p.declareMu.Unlock()
	conn, gen, err := p.conn.get(ctx)
	if err != nil {
		return err
	}
	if p.declared[topic] == gen {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if err := declareExchange(ch, topic); err != nil {
		return err
	}
	p.declared[topic] = gen
	return nil
}

func (p *publishPool) forget(topic string) {
	p.declareMu.Lock()
	defer p.declareMu.Unlock()
	delete(p.declared, topic)
}

// channel returns the slot's channel on the current connection, opening it
// in confirm mode as needed. Only publishes use it.
func (s *publishSlot) channel(ctx context.Context, p *publishPool) (*amqp.Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil || s.ch.IsClosed() {
		ch, _, err := p.conn.channel(ctx)
		if err != nil {
			return nil, err
		}
		if !p.cfg.DisableConfirms {
			if err := ch.Confirm(false); err != nil {
				_ = ch.Close()
				return nil, fmt.Errorf("put channel in confirm mode: %w", err)
			}
		}
		s.ch = ch
	}
	return s.ch, nil
}

func (p *publishPool) close() {
	for _, s := range p.slots {
		s.mu.Lock()
		if s.ch != nil {
			_ = s.ch.Close()
			s.ch = nil
		}
		s.mu.Unlock()
	}
}
