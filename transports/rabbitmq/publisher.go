package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports"
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
// no queue takes fails with ErrUnroutable.
//
// Publish is bounded by the first message's context and
// Config.PublishTimeout, whichever ends first, and returns within a few
// milliseconds of that deadline whatever the network and the broker do:
// waiting for a connection while reconnecting, for a channel, for a
// resource alarm to clear (ErrBlocked), for the socket or for the confirm.
// Its error wraps transports.ErrMaybeSent when the broker may have stored
// a message (written, not confirmed); one that does not means none of msgs
// was stored. A message over Config.MaxMessageBytes is refused before
// anything is sent (*transports.MessageTooLargeError).
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() || p.t.isClosed() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := p.t.checkSize(msgs); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
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

	// large are the channels of publishes with a message over
	// largeMessage: one call at a time each.
	large     []*publishSlot
	nextLarge atomic.Uint64

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

func newPublishPool(cfg *Config, conn *connection) *publishPool {
	p := &publishPool{
		cfg: cfg, conn: conn,
		slots:     make([]*publishSlot, cfg.PublishChannels),
		large:     make([]*publishSlot, cfg.PublishChannels),
		mandatory: make([]*mandatorySlot, cfg.PublishChannels),
		declared:  map[string]uint64{}, lanes: map[string]map[string]bool{},
		laneDecl: map[string]uint64{}, delayDest: map[string]uint64{},
	}
	for i := range p.slots {
		p.slots[i] = &publishSlot{}
		p.large[i] = &publishSlot{turn: make(chan struct{}, 1)}
		p.mandatory[i] = &mandatorySlot{inFlight: make(chan struct{}, returnBuffer)}
	}
	return p
}

// largeMessage is the body size above which a publish goes to a channel
// of its own (publishPool.large), one call at a time: a broker whose
// max_message_size is below Config.MaxMessageBytes refuses such a message
// by closing the channel it came on, and no other publish is on it. 128
// KiB is far below any limit brokers are configured with in practice, and
// above the messages that need the shared channels' concurrency.
const largeMessage = 128 << 10

func (p *publishPool) publish(parent context.Context, topic string, msgs []*message.Message) (err error) {
	defer func() {
		if err != nil {
			p.forget(topic) // re-declare next time, in case the exchange was deleted
		}
	}()
	ctx, cancel := context.WithTimeout(parent, p.cfg.PublishTimeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w (nothing sent)", topic, err)
	}
	if err := p.declare(ctx, topic); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w (nothing sent)", topic, err)
	}
	slot := p.slots[p.next.Add(1)%uint64(len(p.slots))]
	if slices.ContainsFunc(msgs, func(m *message.Message) bool { return len(m.Payload) > largeMessage }) {
		slot = p.large[p.nextLarge.Add(1)%uint64(len(p.large))]
		select {
		case slot.turn <- struct{}{}:
			defer func() { <-slot.turn }()
		case <-ctx.Done():
			return fmt.Errorf("rabbitmq: publish to %s: waiting for a channel for large messages: %w (nothing sent)", topic, ctx.Err())
		}
	}
	pc, err := slot.channel(ctx, p, false)
	if err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w (nothing sent)", topic, err)
	}
	if err := p.conn.waitUnblocked(ctx); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w (nothing sent)", topic, err)
	}
	exchange := ExchangeName(topic)
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	var werr error
	finished, started := sendBounded(ctx, func() {
		for _, m := range msgs {
			dc, err := pc.ch.PublishWithDeferredConfirm(exchange, "", false, false, toPublishing(m, true, p.cfg.HeaderPrefix))
			if err != nil {
				werr = err
				return
			}
			confirms = append(confirms, dc)
		}
	})
	if !finished { // the writing goroutine may still use confirms and werr
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, abandonedError(ctx, p.conn, started))
	}
	if err := writeError(werr, len(confirms), msgs); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	if p.cfg.DisableConfirms {
		return nil
	}
	if err := awaitConfirms(ctx, p.conn, pc, msgs, confirms, nil); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	return nil
}

// Values of a sendBounded's state.
const (
	sendWaiting int32 = iota
	sendStarted
	sendAbandoned
)

// sendBounded runs write on a goroutine of its own and waits for it until
// ctx ends: amqp091 writes to the socket without a deadline, and a write
// blocks once the socket's buffers are full of bytes the broker does not
// read (the network drops them, or a resource alarm made the broker stop
// reading). finished reports whether write returned in time; started,
// whether it began: once sendBounded gave up on a write that had not
// begun, it never begins.
func sendBounded(ctx context.Context, write func()) (finished, started bool) {
	var state atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		if state.CompareAndSwap(sendWaiting, sendStarted) {
			write()
		}
	}()
	select {
	case <-done:
		return true, true
	case <-ctx.Done():
		select {
		case <-done:
			return true, true
		default:
		}
		return false, !state.CompareAndSwap(sendWaiting, sendAbandoned)
	}
}

// abandonedError is the error of a sendBounded that did not finish in
// time: it wraps ErrMaybeSent unless the write never began.
func abandonedError(ctx context.Context, conn *connection, started bool) error {
	if !started {
		return fmt.Errorf("waiting to write to the broker: %w (nothing sent)", conn.withBlocked(ctx.Err()))
	}
	return transports.MaybeSent(fmt.Errorf("writing to the broker: %w", conn.withBlocked(ctx.Err())))
}

// writeError is the error of a finished sendBounded whose write failed
// with werr after written of msgs, or nil when werr is. It wraps
// ErrMaybeSent unless nothing can have reached the broker: the first
// message's write failed on a closed channel.
func writeError(werr error, written int, msgs []*message.Message) error {
	if werr == nil {
		return nil
	}
	err := fmt.Errorf("publish message %s: %w", msgs[written].UUID, werr)
	if written == 0 && errors.Is(werr, amqp.ErrClosed) {
		return fmt.Errorf("%w (nothing sent)", err)
	}
	return transports.MaybeSent(err)
}

// awaitConfirms waits, until ctx ends, for the broker to confirm every one
// of msgs, published on pc with confirms. An error wraps ErrMaybeSent
// unless the broker stored none of msgs: it refused the first one (too
// large), and so discarded those after it. refused, when not nil, is
// called for a message the broker did not confirm, before pc is given up.
func awaitConfirms(ctx context.Context, conn *connection, pc *pubChannel, msgs []*message.Message, confirms []*amqp.DeferredConfirmation, refused func()) error {
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return transports.MaybeSent(fmt.Errorf("message %s: no confirm from the broker: %w", msgs[i].UUID, conn.withBlocked(err)))
		}
		if ok {
			continue
		}
		if refused != nil {
			refused()
		}
		reason := pc.closeReason()
		if k, limit := tooLarge(reason, msgs[i:]); k >= 0 {
			err := fmt.Errorf("message %s: the broker refused it, %w: %w (the broker's max_message_size, %d bytes, is below transport.rabbitmq.max_message_bytes: set it to at most that)",
				msgs[i+k].UUID, transports.ErrTooLarge, reason, limit)
			if i+k == 0 {
				return fmt.Errorf("%w: nothing stored", err)
			}
			return transports.MaybeSent(err)
		}
		err = errNotConfirmed
		if reason != nil {
			err = fmt.Errorf("%w: the channel closed: %w", errNotConfirmed, reason)
		}
		return transports.MaybeSent(fmt.Errorf("message %s: %w", msgs[i].UUID, err))
	}
	return nil
}

// tooLarge reports which of msgs the broker refused with reason, a channel
// close for a message over its max_message_size ("PRECONDITION_FAILED -
// message size 2000 is larger than configured max size 1000"), and the
// broker's limit; k is -1 when reason is not that, or none of msgs is
// over the limit.
func tooLarge(reason *amqp.Error, msgs []*message.Message) (k, limit int) {
	if reason == nil || reason.Code != amqp.PreconditionFailed {
		return -1, 0
	}
	_, after, ok := strings.Cut(reason.Reason, "max size ")
	if !ok {
		return -1, 0
	}
	limit, err := strconv.Atoi(strings.TrimSpace(after))
	if err != nil {
		return -1, 0
	}
	for k, m := range msgs {
		if len(m.Payload) > limit {
			return k, limit
		}
	}
	return -1, limit
}

var errNotConfirmed = errors.New("the broker did not confirm the message (nacked, or the channel closed first)")

// declare declares topic's exchange once per connection, on a channel of
// its own: amqp091 does not keep an RPC such as exchange.declare from
// slipping between the frames of a concurrent publish on the same channel,
// which makes RabbitMQ close the whole connection (UNEXPECTED_FRAME). The
// declaration is bounded by ctx and holds no lock while it waits for the
// broker: concurrent first publishes to a topic may each declare it.
func (p *publishPool) declare(ctx context.Context, topic string) error {
	_, gen, err := p.conn.get(ctx)
	if err != nil {
		return err
	}
	p.declareMu.Lock()
	done := p.declared[topic] == gen
	p.declareMu.Unlock()
	if done {
		return nil
	}
	gen, err = p.conn.do(ctx, func(ch *amqp.Channel) error { return declareExchange(ch, topic) })
	if err != nil {
		return err
	}
	p.declareMu.Lock()
	p.declared[topic] = gen
	p.declareMu.Unlock()
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
	_, gen, err := p.conn.get(ctx)
	if err != nil {
		return err
	}
	p.declareMu.Lock()
	groups := slices.Collect(maps.Keys(p.lanes[topic]))
	done := len(groups) == 0 || p.laneDecl[topic] == gen
	p.declareMu.Unlock()
	if done {
		return nil
	}
	gen, err = p.conn.do(ctx, func(ch *amqp.Channel) error {
		for _, group := range groups {
			if err := declareGroup(ch, p.cfg, topic, group); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.declareMu.Lock()
	p.laneDecl[topic] = gen
	p.declareMu.Unlock()
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
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rabbitmq: publish to lane %s: %w (nothing sent)", topic, err)
	}
	if err := p.declareLane(ctx, topic); err != nil {
		return fmt.Errorf("rabbitmq: publish to lane %s: %w (nothing sent)", topic, err)
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
	slot     publishSlot

	mu  sync.Mutex // the publish ids and the channels' returned
	seq uint64
}

// publishMandatory publishes pubs to exchange with routing key key,
// mandatory, and returns once RabbitMQ confirmed every one and returned
// none. Its errors wrap ErrMaybeSent as Publish's do.
func (p *publishPool) publishMandatory(ctx context.Context, exchange, key string, msgs []*message.Message, pubs []amqp.Publishing) error {
	for start := 0; start < len(pubs); start += returnBuffer {
		end := min(start+returnBuffer, len(pubs))
		slot := p.mandatory[p.nextMand.Add(1)%uint64(len(p.mandatory))]
		if err := slot.publish(ctx, p, exchange, key, msgs[start:end], pubs[start:end]); err != nil {
			if start > 0 {
				return transports.MaybeSent(err) // the messages before are stored
			}
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
			return fmt.Errorf("waiting to publish: %w (nothing sent)", ctx.Err())
		}
	}
	pc, err := s.slot.channel(ctx, p, true)
	if err != nil {
		return fmt.Errorf("%w (nothing sent)", err)
	}
	if err := p.conn.waitUnblocked(ctx); err != nil {
		return fmt.Errorf("%w (nothing sent)", err)
	}
	ids := make([]string, 0, len(pubs))
	confirms := make([]*amqp.DeferredConfirmation, 0, len(pubs))
	var werr error
	finished, started := sendBounded(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, pub := range pubs {
			s.seq++
			id := strconv.FormatUint(s.seq, 10)
			pub.Headers[publishIDHeader] = id
			dc, err := pc.ch.PublishWithDeferredConfirm(exchange, key, true, false, pub)
			if err != nil {
				werr = err
				return
			}
			ids = append(ids, id)
			confirms = append(confirms, dc)
		}
	})
	if !finished { // the writing goroutine may still use ids, confirms and werr
		// A return may come later and must not stay behind: start the
		// channel over (the other publishes on it fail, unconfirmed).
		s.slot.drop(pc)
		return abandonedError(ctx, p.conn, started)
	}
	if err := writeError(werr, len(confirms), msgs); err != nil {
		s.slot.drop(pc)
		return err
	}
	if err := awaitConfirms(ctx, p.conn, pc, msgs, confirms, func() { s.slot.drop(pc) }); err != nil {
		s.slot.drop(pc)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pc.drain()
	var first *amqp.Return
	n := 0
	for _, id := range ids {
		if r, ok := pc.returned[id]; ok {
			delete(pc.returned, id)
			n++
			if first == nil {
				first = &r
			}
		}
	}
	switch {
	case n == len(pubs):
		return fmt.Errorf("%w (exchange %q, %d of %d messages returned: %d %s)", ErrUnroutable, first.Exchange, n, len(pubs), first.ReplyCode, first.ReplyText)
	case n > 0:
		return transports.MaybeSent(fmt.Errorf("%w (exchange %q, %d of %d messages returned: %d %s; the others are stored)", ErrUnroutable, first.Exchange, n, len(pubs), first.ReplyCode, first.ReplyText))
	}
	return nil
}

// pubChannel is an open publishing channel with what the broker said on
// it. A slot replaces it as a whole when it closes.
type pubChannel struct {
	ch     *amqp.Channel
	closes chan *amqp.Error

	// Mandatory channels only: the returns, and those drained from them
	// by publish id, guarded by the mandatorySlot's mu.
	returns  chan amqp.Return
	returned map[string]amqp.Return

	mu     sync.Mutex
	reason *amqp.Error // why the broker closed the channel, once read
}

// closeReason returns the error the broker closed the channel with, or
// nil while it is open or when it closed without one. amqp091 hands it
// over before it fails the channel's pending confirms.
func (pc *pubChannel) closeReason() *amqp.Error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.reason == nil {
		select {
		case e, ok := <-pc.closes:
			if ok {
				pc.reason = e
			}
		default:
		}
	}
	return pc.reason
}

// drain moves the returns received so far into returned. The
// mandatorySlot's mu is held.
func (pc *pubChannel) drain() {
	for {
		select {
		case r, ok := <-pc.returns:
			if !ok {
				return
			}
			if id, ok := r.Headers[publishIDHeader].(string); ok {
				pc.returned[id] = r
			}
		default:
			return
		}
	}
}

// publishSlot holds one publishing channel of the pool, opened when first
// needed and again after it closed. One caller opens it while the others
// wait, each until its own context ends; none holds mu while the broker is
// asked anything.
type publishSlot struct {
	turn chan struct{} // large-message slots: held by the one call publishing on it; nil for the shared slots

	mu      sync.Mutex
	cur     *pubChannel
	opening chan struct{} // closed when the open under way ended; nil when none is
}

// channel returns the slot's open channel, opening it in confirm mode
// (always for mandatory channels, else unless Config.DisableConfirms) as
// needed.
func (s *publishSlot) channel(ctx context.Context, p *publishPool, mandatory bool) (*pubChannel, error) {
	for {
		s.mu.Lock()
		if s.cur != nil && !s.cur.ch.IsClosed() {
			pc := s.cur
			s.mu.Unlock()
			return pc, nil
		}
		if wait := s.opening; wait != nil {
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for a publishing channel to open: %w", p.conn.withBlocked(ctx.Err()))
			}
		}
		wait := make(chan struct{})
		s.opening = wait
		s.mu.Unlock()
		pc, err := p.openChannel(ctx, mandatory)
		s.mu.Lock()
		s.opening = nil
		if err == nil {
			s.cur = pc
		}
		s.mu.Unlock()
		close(wait)
		return pc, err
	}
}

// drop gives up pc: the slot opens a new channel for the next publish.
func (s *publishSlot) drop(pc *pubChannel) {
	s.mu.Lock()
	if s.cur == pc {
		s.cur = nil
	}
	s.mu.Unlock()
	closeChannel(pc.ch)
}

// openChannel opens a publishing channel, bounded by ctx.
func (p *publishPool) openChannel(ctx context.Context, mandatory bool) (*pubChannel, error) {
	ch, _, err := p.conn.channel(ctx, func(ch *amqp.Channel) error {
		// Mandatory channels confirm even with Config.DisableConfirms: a
		// confirm is what tells a return apart from a stored message.
		if mandatory || !p.cfg.DisableConfirms {
			if err := ch.Confirm(false); err != nil {
				return fmt.Errorf("put channel in confirm mode: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	pc := &pubChannel{ch: ch, closes: ch.NotifyClose(make(chan *amqp.Error, 1))}
	if mandatory {
		pc.returns = ch.NotifyReturn(make(chan amqp.Return, returnBuffer))
		pc.returned = map[string]amqp.Return{}
	}
	return pc, nil
}

// close forgets the pool's channels; closing the connection, which
// follows, closes them. (Closing each would wait for the broker's answer.)
func (p *publishPool) close() {
	for _, s := range slices.Concat(p.slots, p.large) {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
	}
	for _, s := range p.mandatory {
		s.slot.mu.Lock()
		s.slot.cur = nil
		s.slot.mu.Unlock()
	}
}
