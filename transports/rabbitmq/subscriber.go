package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports"
)

// subscriber consumes as one group. Each Subscribe call is one AMQP
// consumer on a channel of its own.
type subscriber struct {
	t        *Transport
	group    string
	nacks    *nackBackoff
	timeouts timeouts
	closing  chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

var (
	_ message.Subscriber            = (*subscriber)(nil)
	_ message.SubscribeInitializer  = (*subscriber)(nil)
	_ transports.Consumer           = (*subscriber)(nil)
	_ transports.ConcurrentConsumer = (*subscriber)(nil)
)

// SubscribeInitialize declares the group's queue on topic, like
// ProvisionGroup.
func (s *subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.t.cfg.PublishTimeout)
	defer cancel()
	return s.t.ProvisionGroup(ctx, topic, s.group)
}

// Subscribe declares the group's queue on topic, then consumes it until ctx
// is done or the subscriber or transport closes, and closes the channel.
// It hands out one message at a time and waits for its Ack or Nack. A lost
// connection or a deleted queue is recovered from: the consumer reconnects,
// re-declares the queue and goes on.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	err := s.start(ctx, topic, &consumer{out: out}, func() { close(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Consume is Subscribe with handle run on the consumer's goroutine: see
// transports.Consumer.
func (s *subscriber) Consume(ctx context.Context, topic string, handle func(*message.Message)) (<-chan struct{}, error) {
	done := make(chan struct{})
	err := s.start(ctx, topic, &consumer{handle: handle}, func() { close(done) })
	if err != nil {
		return nil, err
	}
	return done, nil
}

// ConsumeConcurrent is Consume with up to limit messages handed out and
// not yet settled, settled in any order: see transports.ConcurrentConsumer.
// AMQP acknowledges each delivery by its tag, so every ack and nack goes
// out as the message settles, one by one (never a multiple-ack, which
// would cover a message still in flight). The consumer's prefetch is
// Config.Prefetch, or limit when larger, so that limit messages can be in
// flight. Once ctx is done no message is handed out, and the channel stays
// open until every message handed out is settled, so that their acks reach
// the broker; a message unsettled when the subscriber or the transport
// closes goes back to the queue.
func (s *subscriber) ConsumeConcurrent(ctx context.Context, topic string, limit int, handle func(*message.Message)) (<-chan struct{}, error) {
	limit = min(max(limit, 1), 65535)
	done := make(chan struct{})
	c := &consumer{handle: handle, limit: limit, slots: make(chan struct{}, limit)}
	err := s.start(ctx, topic, c, func() {
		c.waiters.Wait()
		close(done)
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// start declares the group's queue on topic and runs c on it until ctx is
// done or the subscriber or transport closes; ended is called after c
// stopped.
func (s *subscriber) start(ctx context.Context, topic string, c *consumer, ended func()) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	declareCtx, cancel := context.WithTimeout(ctx, s.t.cfg.PublishTimeout)
	err := s.t.ProvisionGroup(declareCtx, topic, s.group)
	cancel()
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	c.s = s
	c.topic = topic
	c.queue = QueueName(topic, s.group)
	c.tag = fmt.Sprintf("%s-%s", s.t.cfg.ConnectionName, uuid.NewString()[:8])
	c.started = make(chan struct{})
	s.wg.Add(1)
	s.t.wg.Add(1)
	go func() {
		defer s.t.wg.Done()
		defer s.wg.Done()
		defer ended()
		defer stop()
		go func() {
			select {
			case <-s.closing:
			case <-s.t.closing:
			case <-runCtx.Done():
			}
			stop()
		}()
		c.run(runCtx)
	}()
	// Return once the broker registered the consumer (or the first attempt
	// failed and the consumer retries in the background): a message
	// published after start returns then finds every consumer of the group
	// that was started before it, and the broker spreads the messages over
	// them instead of filling the first consumer's prefetch.
	select {
	case <-c.started:
	case <-runCtx.Done():
	}
	return nil
}

// Close ends every subscription of this subscriber and waits for their
// consumers to stop. Unacked messages go back to the queue.
func (s *subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

// consumer is one Subscribe, Consume or ConsumeConcurrent call: it hands
// messages out on out, or to handle.
type consumer struct {
	s      *subscriber
	topic  string
	queue  string
	tag    string
	out    chan *message.Message
	handle func(*message.Message)

	// ConsumeConcurrent only: limit is how many messages may be handed
	// out and unsettled at once, slots holds a token for each, and waiters
	// counts the goroutines waiting for their settlement.
	limit   int
	slots   chan struct{}
	waiters sync.WaitGroup

	started     chan struct{} // closed after the first attempt to consume
	startedOnce sync.Once
}

// attempted closes c.started, once.
func (c *consumer) attempted() { c.startedOnce.Do(func() { close(c.started) }) }

// run consumes until ctx is done, starting over after a lost channel with
// the reconnection's backoff (reconnectBackoff), from its first wait again
// once a message came through.
func (c *consumer) run(ctx context.Context) {
	cfg := c.s.t.cfg
	b := reconnectBackoff(cfg)
	_, _ = backoff.Retry(ctx, func() (struct{}, error) {
		delivered, err := c.consume(ctx)
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(ctx.Err())
		}
		if delivered {
			b.Reset()
		}
		if err == nil {
			err = errors.New("the consumer stopped")
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(0), // until ctx is done
		backoff.WithNotify(func(err error, wait time.Duration) {
			cfg.Logger.Warn("rabbitmq: consumer stopped, starting over", "queue", c.queue, "error", redactError(err, cfg.URL.Reveal()), "retry_in", wait)
		}))
}

// consume opens a channel, re-declares the topology and consumes until the
// deliveries end or ctx is done. delivered reports whether any message
// arrived. Closing the channel on return gives unacked messages back to
// RabbitMQ.
func (c *consumer) consume(ctx context.Context) (delivered bool, err error) {
	cfg := c.s.t.cfg
	defer c.attempted() // whatever happened, the first attempt is over
	var deliveries <-chan amqp.Delivery
	prefetch := min(max(cfg.Prefetch, c.limit), 65535)
	ch, _, err := c.s.t.consumeConn.channel(ctx, func(ch *amqp.Channel) error {
		if err := ch.Qos(prefetch, 0, false); err != nil {
			return fmt.Errorf("set prefetch: %w", err)
		}
		if err := declareGroup(ch, cfg, c.topic, c.s.group); err != nil {
			return err
		}
		d, err := ch.Consume(c.queue, c.tag, false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consume queue %q: %w", c.queue, err)
		}
		deliveries = d
		return nil
	})
	if err != nil {
		return false, err
	}
	st := newSettler(ch, max(1, cfg.Prefetch/2), c.s.nacks, cfg.Logger, c.queue)
	st.single = c.limit > 0 // settled out of order: no multiple-ack
	f := &inflight{ids: map[uint64]string{}}
	watched := c.watchTimeout(ch, f)
	var outstanding sync.WaitGroup // ConsumeConcurrent's messages of ch not yet settled
	defer func() {
		c.awaitSettled(ch, &outstanding)
		st.stop() // handled messages must not come back after a clean stop
		closeChannel(ch)
		select {
		case <-watched: // closed: the unacked messages are back in the queue
		case <-time.After(closeWait):
			// No answer from the broker (the network drops, or it stalls):
			// the connection's loss or close ends the channel, and the
			// broker then requeues the messages.
		}
	}()
	c.attempted()
	for {
		select {
		case <-ctx.Done():
			return delivered, nil
		case d, ok := <-deliveries:
			if !ok {
				// The channel closed (connection lost) or the broker
				// cancelled the consumer (queue deleted). Either way there
				// is no message here: never hand out the zero delivery.
				if ch.IsClosed() {
					return delivered, errors.New("channel closed")
				}
				return delivered, fmt.Errorf("the broker cancelled the consumer of queue %q (was it deleted?); re-declaring it", c.queue)
			}
			delivered = true
			if !c.deliver(ctx, ch, &d, st, f, &outstanding) {
				return delivered, nil
			}
		}
	}
}

// deliver hands one message of ch out and settles it with the broker;
// false when ctx ended first, leaving the message to the channel's close.
// f tracks the messages handed out, outstanding those of ConsumeConcurrent.
func (c *consumer) deliver(ctx context.Context, ch *amqp.Channel, d *amqp.Delivery, st *settler, f *inflight, outstanding *sync.WaitGroup) bool {
	msg := toMessage(d)
	if d.Redelivered {
		if n := c.s.timeouts.get(msg.UUID); n >= c.s.t.cfg.TimeoutAttempts {
			c.poisonTimedOut(msg, d, n, st)
			return true
		}
	}
	if c.limit > 0 {
		return c.deliverConcurrent(ctx, ch, msg, d.DeliveryTag, st, f, outstanding)
	}
	f.add(d.DeliveryTag, msg.UUID)
	defer f.remove(d.DeliveryTag)
	if c.handle != nil {
		if ctx.Err() != nil {
			return false
		}
		st.settle(msg.UUID, d.DeliveryTag, transports.Handle(ctx, msg, c.handle))
		return true
	}
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(msgCtx)
	select {
	case c.out <- msg:
	case <-ctx.Done():
		return false
	}
	select {
	case <-msg.Acked():
		st.settle(msg.UUID, d.DeliveryTag, true)
		return true
	case <-msg.Nacked():
		st.settle(msg.UUID, d.DeliveryTag, false)
		return true
	case <-ctx.Done():
		// Acked at the same moment? select picks among ready cases at
		// random: a lost ack means a second delivery.
		select {
		case <-msg.Acked():
			st.settle(msg.UUID, d.DeliveryTag, true)
		default:
		}
		return false
	}
}

// deliverConcurrent hands msg to handle once fewer than c.limit messages
// are unsettled, and settles it with the broker when it is acked or
// nacked, whenever that is; false when ctx ended or ch closed first.
func (c *consumer) deliverConcurrent(ctx context.Context, ch *amqp.Channel, msg *message.Message, tag uint64, st *settler, f *inflight, outstanding *sync.WaitGroup) bool {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	if ctx.Err() != nil || ch.IsClosed() {
		<-c.slots // the broker redelivers it: hand out no message it takes back
		return false
	}
	f.add(tag, msg.UUID)
	outstanding.Add(1)
	c.waiters.Add(1)
	go func() {
		defer c.waiters.Done()
		defer func() { <-c.slots }()
		defer outstanding.Done()
		defer f.remove(tag)
		select {
		case <-msg.Acked():
			st.settle(msg.UUID, tag, true)
		case <-msg.Nacked():
			st.settle(msg.UUID, tag, false)
		case <-c.s.closing:
			c.giveBack(msg, tag, st)
		case <-c.s.t.closing:
			c.giveBack(msg, tag, st)
		}
	}()
	msg.SetContext(ctx)
	c.handle(msg)
	return true
}

// giveBack leaves msg, unsettled as its subscriber or transport closes, to
// the channel's close, which returns it to the queue; unless it was acked
// at that moment after all.
func (c *consumer) giveBack(msg *message.Message, tag uint64, st *settler) {
	select {
	case <-msg.Acked():
		st.settle(msg.UUID, tag, true)
	default:
	}
}

// awaitSettled waits, for ConsumeConcurrent, until every message handed
// out on ch is settled, so that their acks go out before ch closes: unless
// ch is closed already, or the subscriber or transport closes, which gives
// them back to the broker.
func (c *consumer) awaitSettled(ch *amqp.Channel, outstanding *sync.WaitGroup) {
	if c.limit == 0 || ch.IsClosed() {
		return
	}
	settled := make(chan struct{})
	go func() {
		outstanding.Wait()
		close(settled)
	}()
	select {
	case <-settled:
	case <-c.s.closing:
	case <-c.s.t.closing:
	}
}

// inflight are the messages of one channel handed out and not yet
// settled, by delivery tag.
type inflight struct {
	mu  sync.Mutex
	ids map[uint64]string
}

func (f *inflight) add(tag uint64, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids[tag] = id
}

func (f *inflight) remove(tag uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ids, tag)
}

// oldest is the id of the message delivered first of those in flight, or
// "": the one the broker's consumer_timeout fires on.
func (f *inflight) oldest() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var first uint64
	id := ""
	for tag, i := range f.ids {
		if id == "" || tag < first {
			first, id = tag, i
		}
	}
	return id
}

// ackDelay is the longest an acked delivery waits for a batched ack.
const ackDelay = 20 * time.Millisecond

// settler settles the deliveries of one channel. Acks are batched: one
// multiple-ack covers up to max acked deliveries, or whatever was acked
// within ackDelay, which saves the broker a frame per message; a timer of
// its own sends the batch on time, whatever the consumer goroutine is doing.
// A nacked delivery is nacked after its backoff; while one waits, acks go
// out one by one, since a multiple-ack would cover it too. Every change of
// state happens under mu together with the frame that goes with it, so no
// multiple-ack can slip in while a nack is on its way.
type settler struct {
	ack     amqp.Acknowledger // the channel
	single  bool              // ack each delivery by itself, at once: deliveries settle out of order (ConsumeConcurrent)
	max     int               // acks per multiple-ack
	backoff *nackBackoff
	log     *slog.Logger
	queue   string

	mu      sync.Mutex
	stopped bool
	last    uint64 // delivery tag of the latest ack not yet sent
	count   int    // acks not yet sent
	timer   *time.Timer
	nacks   map[uint64]*time.Timer // nacks waiting for their backoff, by delivery tag
}

func newSettler(ack amqp.Acknowledger, max int, backoff *nackBackoff, log *slog.Logger, queue string) *settler {
	return &settler{ack: ack, max: max, backoff: backoff, log: log, queue: queue, nacks: map[uint64]*time.Timer{}}
}

// settle acks the delivery tag, or nacks it for redelivery after the
// message's backoff. id names the message for the backoff.
func (st *settler) settle(id string, tag uint64, acked bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return // the channel's close returns the message
	}
	if !acked {
		st.flushLocked() // before the nack waits: a later multiple-ack must not cover it
		delay := st.backoff.next(id)
		st.nacks[tag] = time.AfterFunc(delay, func() { st.nack(tag) })
		return
	}
	st.backoff.forget(id)
	if st.single || len(st.nacks) > 0 {
		st.flushLocked()
		st.send(tag, false, 1)
		return
	}
	st.last = tag
	st.count++
	switch {
	case st.count >= st.max:
		st.flushLocked()
	case st.count == 1:
		if st.timer == nil {
			st.timer = time.AfterFunc(ackDelay, st.flush)
		} else {
			st.timer.Reset(ackDelay)
		}
	}
}

// nack sends the nack of tag once its backoff has passed; the tag leaves
// the waiting set only with its frame sent.
func (st *settler) nack(tag uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, waiting := st.nacks[tag]; !waiting || st.stopped {
		return
	}
	if err := st.ack.Nack(tag, false, true); err != nil {
		st.log.Debug("rabbitmq: nack failed; the message returns to the queue when the channel closes", "queue", st.queue, "error", err)
	}
	delete(st.nacks, tag)
}

// flush sends the batched acks as one multiple-ack.
func (st *settler) flush() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.stopped {
		st.flushLocked()
	}
}

func (st *settler) flushLocked() {
	if st.count == 0 {
		return
	}
	st.send(st.last, st.count > 1, st.count)
	st.count = 0
	if st.timer != nil {
		st.timer.Stop()
	}
}

func (st *settler) send(tag uint64, multiple bool, n int) {
	if err := st.ack.Ack(tag, multiple); err != nil {
		st.log.Warn("rabbitmq: ack failed; the messages will be redelivered", "queue", st.queue, "count", n, "error", err)
	}
}

// stop sends the batched acks and drops the nacks that have not been sent:
// the channel's close, which follows, returns their messages to the queue.
// Nothing is sent after it.
func (st *settler) stop() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.flushLocked()
	for _, t := range st.nacks {
		t.Stop()
	}
	clear(st.nacks)
	if st.timer != nil {
		st.timer.Stop()
	}
	st.stopped = true
}

// nackBackoff tracks consecutive nacks per message id within a subscriber,
// to double the delay before each redelivery.
type nackBackoff struct {
	base, max time.Duration
	mu        sync.Mutex
	counts    map[string]*backoff.ExponentialBackOff // by message id
}

func newNackBackoff(base, max time.Duration) *nackBackoff {
	return &nackBackoff{base: base, max: max, counts: map[string]*backoff.ExponentialBackOff{}}
}

// maxTracked bounds nackBackoff's memory: past it, the counts start over.
const maxTracked = 10000

// next is the delay before the redelivery of the message id nacked now:
// base, doubling at each consecutive nack, up to max.
func (b *nackBackoff) next(id string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.counts) >= maxTracked {
		clear(b.counts)
	}
	eb := b.counts[id]
	if eb == nil {
		eb = &backoff.ExponentialBackOff{InitialInterval: b.base, Multiplier: 2, MaxInterval: b.max}
		b.counts[id] = eb
	}
	return eb.NextBackOff()
}

func (b *nackBackoff) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.counts, id)
}
