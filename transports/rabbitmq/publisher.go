package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
// are dropped by RabbitMQ. A lane (a topic ending in .retry or .poison) is
// different: its publishes are mandatory and always confirmed, and one that
// no queue takes fails with ErrUnroutable. Publish waits for a connection
// while reconnecting, up to Config.PublishTimeout or the first message's
// context.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	if isLane(topic) {
		return p.t.pool.publishLane(msgs[0].Context(), topic, msgs)
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

	// mandatory are the channels of mandatory publishes (lanes, delays):
	// one publish at a time each, so that a returned message belongs to it.
	mandatory []*mandatorySlot
	nextMand  atomic.Uint64

	declareMu sync.Mutex
	declared  map[string]uint64          // topic → connection generation its exchange was declared on
	lanes     map[string]map[string]bool // lane topic → groups provisioned on it here
	laneDecl  map[string]uint64          // lane topic → generation its queues were declared on
	delayDecl uint64                     // generation the delay levels were declared on
	delayDest map[string]uint64          // topic → generation its delivery binding was declared on
}

type publishSlot struct {
	mu sync.Mutex
	ch *amqp.Channel
}

func newPublishPool(cfg *Config, conn *connection) *publishPool {
	p := &publishPool{
		cfg: cfg, conn: conn,
		slots:     make([]*publishSlot, cfg.PublishChannels),
		mandatory: make([]*mandatorySlot, cfg.PublishChannels),
		declared:  map[string]uint64{}, lanes: map[string]map[string]bool{},
		laneDecl: map[string]uint64{}, delayDest: map[string]uint64{},
	}
	for i := range p.slots {
		p.slots[i] = &publishSlot{}
		p.mandatory[i] = &mandatorySlot{inFlight: make(chan struct{}, returnBuffer)}
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
		pub := toPublishing(m, true, p.cfg.HeaderPrefix)
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
	delete(p.laneDecl, topic)
	delete(p.delayDest, topic)
}

// addLane records that group's queue on the lane topic was provisioned
// through this transport, so that publishes to the lane re-declare it on
// each new connection.
func (p *publishPool) addLane(topic, group string) {
	p.declareMu.Lock()
	defer p.declareMu.Unlock()
	if p.lanes[topic] == nil {
		p.lanes[topic] = map[string]bool{}
	}
	p.lanes[topic][group] = true
}

// declareLane declares the lane's exchange and, once per connection, the
// queues of the groups provisioned on it here: a lane queue deleted by hand
// comes back before the next publish on a new connection, or after the
// failed publish that found it gone.
func (p *publishPool) declareLane(ctx context.Context, topic string) error {
	if err := p.declare(ctx, topic); err != nil {
		return err
	}
	p.declareMu.Lock()
	defer p.declareMu.Unlock()
	conn, gen, err := p.conn.get(ctx)
	if err != nil {
		return err
	}
	if len(p.lanes[topic]) == 0 || p.laneDecl[topic] == gen {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	for group := range p.lanes[topic] {
		if err := declareGroup(ch, p.cfg, topic, group); err != nil {
			return err
		}
	}
	p.laneDecl[topic] = gen
	return nil
}

// publishLane publishes msgs to the lane topic, mandatory and confirmed.
func (p *publishPool) publishLane(parent context.Context, topic string, msgs []*message.Message) (err error) {
	defer func() {
		if err != nil {
			p.forget(topic)
		}
	}()
	ctx, cancel := context.WithTimeout(parent, p.cfg.PublishTimeout)
	defer cancel()
	if err := p.declareLane(ctx, topic); err != nil {
		return fmt.Errorf("rabbitmq: publish to lane %s: %w", topic, err)
	}
	pubs := make([]amqp.Publishing, len(msgs))
	for i, m := range msgs {
		pubs[i] = toPublishing(m, true, p.cfg.HeaderPrefix)
	}
	if err := p.publishMandatory(ctx, ExchangeName(topic), "", msgs, pubs); err != nil {
		return fmt.Errorf("rabbitmq: publish to lane %s: %w", topic, err)
	}
	return nil
}

// ErrUnroutable is returned by a publish to a lane, or a delayed publish,
// that RabbitMQ returned because no queue took it (a lane queue or a delay
// level deleted by hand, say). The message was not stored: the caller keeps
// its original, and the next publish re-declares the missing queue where
// this transport provisioned it.
var ErrUnroutable = errors.New("rabbitmq: the broker returned the message: no queue is bound to take it")

// returnBuffer bounds how many mandatory publishes are in flight on one
// channel: amqp091 drops a return its listener does not take within 5
// seconds, so the listener's buffer holds a return for each of them.
const returnBuffer = 256

// publishIDHeader carries a mandatory publish's id, by which a returned
// message is told apart from the others in flight on its channel. It is
// removed before a message is handed out.
const publishIDHeader = "busline_rabbitmq_publish_id"

// mandatorySlot is a confirm-mode channel for mandatory publishes. Up to
// returnBuffer of them are in flight at once; RabbitMQ sends a mandatory
// message's basic.return before its basic.ack and amqp091 hands frames over
// in order, so once a publish is confirmed its return, if any, is in the
// buffer or already moved to returned.
type mandatorySlot struct {
	inFlight chan struct{} // one token per publish in flight

	mu  sync.Mutex
	cur *mandatoryChannel
	seq uint64
}

// mandatoryChannel is one channel of a mandatorySlot with its returns,
// replaced as a whole when the channel closes. Guarded by the slot's mu.
type mandatoryChannel struct {
	ch       *amqp.Channel
	returns  chan amqp.Return
	returned map[string]amqp.Return // by publish id, drained from returns
}

// publishMandatory publishes pubs to exchange with routing key key,
// mandatory, and returns once RabbitMQ confirmed every one and returned
// none.
func (p *publishPool) publishMandatory(ctx context.Context, exchange, key string, msgs []*message.Message, pubs []amqp.Publishing) error {
	for start := 0; start < len(pubs); start += returnBuffer {
		end := min(start+returnBuffer, len(pubs))
		slot := p.mandatory[p.nextMand.Add(1)%uint64(len(p.mandatory))]
		if err := slot.publish(ctx, p, exchange, key, msgs[start:end], pubs[start:end]); err != nil {
			return err
		}
	}
	return nil
}

func (s *mandatorySlot) publish(ctx context.Context, p *publishPool, exchange, key string, msgs []*message.Message, pubs []amqp.Publishing) error {
	acquired := 0
	defer func() {
		for range acquired {
			<-s.inFlight
		}
	}()
	for range pubs {
		select {
		case s.inFlight <- struct{}{}:
			acquired++
		case <-ctx.Done():
			return fmt.Errorf("waiting to publish: %w (not sent; safe to retry)", ctx.Err())
		}
	}
	mc, ids, confirms, err := s.send(ctx, p, exchange, key, msgs, pubs)
	if err != nil {
		return err
	}
	for i, dc := range confirms {
		select {
		case <-dc.Done():
		case <-ctx.Done():
			// Its return may come later and must not stay behind: start the
			// channel over (the other publishes on it fail, unconfirmed).
			s.abandon(mc)
			return fmt.Errorf("publish message %s: no confirm from the broker: %w (it may or may not have the message; retrying can duplicate it)", msgs[i].UUID, ctx.Err())
		}
		if !dc.Acked() {
			s.abandon(mc)
			return fmt.Errorf("publish message %s: %w", msgs[i].UUID, errNotConfirmed)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mc.drain()
	var first *amqp.Return
	n := 0
	for _, id := range ids {
		if r, ok := mc.returned[id]; ok {
			delete(mc.returned, id)
			n++
			if first == nil {
				first = &r
			}
		}
	}
	if n > 0 {
		return fmt.Errorf("%w (exchange %q, %d of %d messages returned: %d %s)", ErrUnroutable, first.Exchange, n, len(pubs), first.ReplyCode, first.ReplyText)
	}
	return nil
}

// send publishes pubs, each with an id of its own, on the slot's channel,
// opening it as needed.
func (s *mandatorySlot) send(ctx context.Context, p *publishPool, exchange, key string, msgs []*message.Message, pubs []amqp.Publishing) (*mandatoryChannel, []string, []*amqp.DeferredConfirmation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.ch.IsClosed() {
		ch, _, err := p.conn.channel(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		// Confirms even with Config.DisableConfirms: they are what tells a
		// return apart from a stored message.
		if err := ch.Confirm(false); err != nil {
			_ = ch.Close()
			return nil, nil, nil, fmt.Errorf("put channel in confirm mode: %w", err)
		}
		s.cur = &mandatoryChannel{ch: ch, returns: ch.NotifyReturn(make(chan amqp.Return, returnBuffer)), returned: map[string]amqp.Return{}}
	}
	mc := s.cur
	ids := make([]string, len(pubs))
	confirms := make([]*amqp.DeferredConfirmation, len(pubs))
	for i, pub := range pubs {
		s.seq++
		ids[i] = strconv.FormatUint(s.seq, 10)
		pub.Headers[publishIDHeader] = ids[i]
		dc, err := mc.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, pub)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("publish message %s: %w (not confirmed; retrying can duplicate the messages before it)", msgs[i].UUID, err)
		}
		confirms[i] = dc
	}
	return mc, ids, confirms, nil
}

// drain moves the returns received so far into returned. The slot's mu is
// held.
func (mc *mandatoryChannel) drain() {
	for {
		select {
		case r, ok := <-mc.returns:
			if !ok {
				return
			}
			if id, ok := r.Headers[publishIDHeader].(string); ok {
				mc.returned[id] = r
			}
		default:
			return
		}
	}
}

// abandon closes mc's channel; the slot opens a new one for the next
// publish.
func (s *mandatorySlot) abandon(mc *mandatoryChannel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = mc.ch.Close()
	if s.cur == mc {
		s.cur = nil
	}
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
	for _, s := range p.mandatory {
		s.mu.Lock()
		if s.cur != nil {
			_ = s.cur.ch.Close()
			s.cur = nil
		}
		s.mu.Unlock()
	}
}
