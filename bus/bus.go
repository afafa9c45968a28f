package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// handlerStopWait is how long Close waits for handlers to return once their
// contexts were cancelled, when Close's context has no earlier deadline;
// minStopWait is what it gives them even when that deadline has passed.
const (
	handlerStopWait = 5 * time.Second
	minStopWait     = 100 * time.Millisecond
)

// Bus publishes typed events and runs typed handlers over one transport.
// Create it with New, register handlers with Subscribe, start them with Run
// and stop with Close. A Bus is safe for concurrent use.
//
// Each subscription runs Concurrency workers per topic it consumes (the
// event's topic and the group's retry lanes). A worker takes one message
// from the transport's subscriber, runs it through the failure pipeline to
// the handler, acks or nacks it, and takes the next: the handler runs on a
// long-lived goroutine, and a message is taken only when a worker is free.
// Where the transport's subscriber is a transports.Consumer, the worker is
// the transport's own delivery goroutine, which saves the two goroutine
// switches per message of a channel.
type Bus struct {
	cfg       Config
	transport transports.Transport
	publisher message.Publisher
	kind      string // TransportKind
	maxEvent  int    // the largest event Publish sends (see maxEvent); 0: no limit

	// stopCtx is cancelled when Close starts: workers take no more
	// messages.
	stopCtx context.Context
	stop    context.CancelFunc
	// handlerCtx is cancelled when the grace period ends: it cancels the
	// contexts of the handlers still running.
	handlerCtx    context.Context
	cancelHandler context.CancelFunc
	// runCtx is the context of the subscriptions; cancelled once the
	// workers stopped.
	runCtx    context.Context
	cancelRun context.CancelFunc
	// workers counts the running workers.
	workers sync.WaitGroup
	running chan struct{} // closed when Run started every worker

	// abandoned is set when Close gave up waiting for handlers that ignore
	// their cancelled contexts: what they return later is nacked, as
	// Close's error promised.
	abandoned atomic.Bool

	mu          sync.Mutex
	handlers    map[string]*atomic.Int64 // "event/group" → handlers running
	pending     []worker                 // registered, started by Run
	subscribers map[string]message.Subscriber
	health      map[string]*subscriptionHealth // "event/group" → its consumers, for Health
	started     bool                           // Run was called
	closed      bool
	closeDone   chan struct{}
	closeErr    error
}

// worker is one consumer loop: one Subscribe on topic, feeding handle.
type worker struct {
	sub    message.Subscriber
	topic  string
	handle message.HandlerFunc
	// waitDue makes the worker wait for each message's due time before
	// handling it, bounded by delays (middleware.WaitDue): the retry lane of
	// a transport that is no transports.Delayer.
	waitDue bool
	delays  []time.Duration
	// keyed, above 1, makes the worker one consumer whose messages run on
	// keyed workers by key (see consumeKeyed).
	keyed int
	// running counts the subscription's handlers running, for Close's
	// report of those that do not stop.
	running *atomic.Int64
	// health records the consumer's state for Health.
	health *subscriptionHealth
}

// maxEvent is the largest event the bus publishes on a transport whose
// limit is limit: the limit less room for the failure record a lane adds
// (wire.FailureReserve), so that every event busline published can move to
// a lane. Zero: no limit.
func maxEvent(limit int) int {
	if limit <= 0 {
		return 0
	}
	return max(limit-wire.FailureReserve, 1)
}

// New returns a bus over t. It validates cfg and returns every problem at
// once. The bus does not close t unless cfg.CloseTransport is set.
func New(t transports.Transport, cfg Config) (*Bus, error) {
	if t == nil {
		return nil, errors.New("bus.New: nil transport (open one with transports.Open, memory.New or config.Open)")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("bus.New: invalid config: %w", err)
	}
	pub, err := t.Publisher()
	if err != nil {
		return nil, fmt.Errorf("bus.New: publisher: %w", err)
	}
	b := &Bus{
		cfg:         cfg,
		transport:   t,
		publisher:   pub,
		kind:        transportKind(t),
		running:     make(chan struct{}),
		handlers:    map[string]*atomic.Int64{},
		subscribers: map[string]message.Subscriber{},
		closeDone:   make(chan struct{}),
		maxEvent:    maxEvent(t.Features().MaxMessageBytes),
	}
	b.stopCtx, b.stop = context.WithCancel(context.Background())
	b.handlerCtx, b.cancelHandler = context.WithCancel(context.Background())
	b.runCtx, b.cancelRun = context.WithCancel(context.Background())
	return b, nil
}

// Transport returns the transport the bus runs on.
func (b *Bus) Transport() transports.Transport { return b.transport }

// Running returns a channel closed once Run has started every handler
// registered before it.
func (b *Bus) Running() <-chan struct{} { return b.running }

// Run starts the handlers registered with Subscribe and blocks until ctx is
// done or Close is called; handlers subscribed while it runs start at once.
// When ctx is done, Run shuts down as Close does, with cfg.ShutdownGrace, and
// returns its result. It returns ErrRunning if the bus already runs and
// ErrClosed after Close.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return ErrClosed
	case b.started:
		b.mu.Unlock()
		return ErrRunning
	}
	b.started = true
	pending := b.pending
	b.pending = nil
	var err error
	for _, w := range pending {
		if err = b.start(w); err != nil {
			break
		}
	}
	b.mu.Unlock()
	if err != nil {
		return errors.Join(fmt.Errorf("bus: run: %w", err), b.Close(context.Background()))
	}
	close(b.running)
	select {
	case <-ctx.Done():
		return b.Close(context.Background())
	case <-b.closeDone:
		return nil
	}
}

// start subscribes w and runs its loop. b.mu is held.
func (b *Bus) start(w worker) error {
	if c, ok := w.sub.(transports.ConcurrentConsumer); ok && w.keyed > 1 {
		return b.consumeKeyed(c, w)
	}
	if c, ok := w.sub.(transports.Consumer); ok {
		return b.consume(c, w)
	}
	msgs, err := w.sub.Subscribe(b.runCtx, w.topic)
	w.health.started(w.topic, err)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", w.topic, err)
	}
	b.workers.Add(1)
	go func() {
		defer b.workers.Done()
		b.loop(msgs, w)
		w.health.ended(w.topic)
	}()
	return nil
}

// consume runs w on the transport's delivery goroutine: Consume stops
// calling when Close starts, and w ends once the last call returned.
func (b *Bus) consume(c transports.Consumer, w worker) error {
	done, err := c.Consume(b.stopCtx, w.topic, func(msg *message.Message) {
		if b.isClosed() {
			msg.Nack() // taken as Close started: left for redelivery
			return
		}
		b.handle(msg, w)
	})
	w.health.started(w.topic, err)
	if err != nil {
		return fmt.Errorf("consume %s: %w", w.topic, err)
	}
	b.workers.Go(func() { <-done; w.health.ended(w.topic) })
	return nil
}

// loop hands messages to handle one at a time until the bus stops or the
// subscription ends.
func (b *Bus) loop(msgs <-chan *message.Message, w worker) {
	for {
		select {
		case <-b.stopCtx.Done():
			return
		case msg, ok := <-msgs:
			if !ok {
				return
			}
			select {
			case <-b.stopCtx.Done():
				msg.Nack() // taken as Close started: left for redelivery
				return
			default:
			}
			b.handle(msg, w)
		}
	}
}

// handle runs one message through w's handler with a context that Close
// cancels when the grace period ends, and acks or nacks it.
func (b *Bus) handle(msg *message.Message, w worker) {
	if w.waitDue && !b.waitDue(msg, w.delays) {
		msg.Nack() // the bus stops or the transport took the message back
		return
	}
	msg.SetContext(handlerContext{Context: b.handlerCtx, values: msg.Context()})
	w.running.Add(1)
	_, err := w.handle(msg)
	w.running.Add(-1)
	if b.abandoned.Load() {
		msg.Nack() // Close reported it still running and left it for redelivery
		return
	}
	if err != nil {
		// Only a stop, or a lane publish that failed, gets here: the
		// pipeline turns every handler failure into a lane move.
		if b.handlerCtx.Err() == nil && msg.Context().Err() == nil {
			event, group := w.health.names()
			b.cfg.Logger.Warn("busline: message left for redelivery", "event", event, "group", group,
				"topic", w.topic, "id", msg.UUID, "attempt", msg.Metadata.Get(wire.MetaAttempts), "err", err)
			w.health.failed(err)
		}
		msg.Nack()
		return
	}
	msg.Ack()
}

// waitDue waits until msg is due (middleware.WaitDue). The wait ends at once
// when Close starts or the transport cancels the message's context (a
// revoked partition, a closing subscriber); it reports whether msg is due.
func (b *Bus) waitDue(msg *message.Message, delays []time.Duration) bool {
	d := middleware.WaitDue(msg.Metadata, delays, time.Now())
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-b.stopCtx.Done():
	case <-msg.Context().Done():
	}
	return false
}

// handlerContext is a handler's context: the values of the message's
// context (those the transport set), and the deadline and cancellation of
// the bus's handler context, which Close cancels when the grace period ends.
// It costs one small allocation per message, where deriving a context from
// both costs a cancel context and a registration on the bus's.
type handlerContext struct {
	context.Context
	values context.Context
}

// Value looks key up in the message's context.
func (c handlerContext) Value(key any) any { return c.values.Value(key) }

// AfterFunc lets contexts derived from c (context.WithCancel, WithTimeout)
// follow its cancellation without a goroutine each: package context uses
// this method when a parent has it.
func (c handlerContext) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.Context, f)
}

// Close stops the bus gracefully: subscriptions stop taking messages,
// in-flight handlers get until the grace period ends (ctx's deadline or
// cfg.ShutdownGrace, whichever comes first) to finish, then their contexts
// are cancelled. A message whose handler did not finish is not acked, so the
// broker redelivers it; cancellation by Close is never treated as a handler
// failure. Messages waiting for a delayed redelivery are kept by the
// transport and hold nothing up.
//
// Close returns by ctx's deadline (plus at most 200ms) even if a handler
// ignores its cancelled context: it then reports the subscriptions whose
// handlers still run, nacks whatever they return later, and leaves the
// subscribers and the transport to finish closing in the background. Close
// is idempotent: later calls wait for the first and return its result.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.closeDone
		return b.closeErr
	}
	b.closed = true
	b.mu.Unlock()

	b.stop()
	idle := make(chan struct{})
	go func() {
		b.workers.Wait()
		close(idle)
	}()
	var errs []error
	stuck := false
	if !waitIdle(ctx, idle, b.cfg.ShutdownGrace) {
		b.cancelHandler()
		if !waitIdle(ctx, idle, handlerStopWait) && !waitIdle(context.Background(), idle, minStopWait) {
			stuck = true
			b.abandoned.Store(true)
			errs = append(errs, fmt.Errorf("bus: close: handlers still running after their contexts were cancelled (%s); their messages are left unacked for redelivery", b.runningHandlers()))
		}
	}
	b.cancelHandler()
	b.cancelRun()
	if !stuck {
		errs = append(errs, b.release()...)
	} else {
		// Subscribers may wait for the stuck handlers: they finish closing
		// in the background once those return.
		released := make(chan []error, 1)
		go func() { released <- b.release() }()
		timer := time.NewTimer(minStopWait)
		select {
		case rerrs := <-released:
			errs = append(errs, rerrs...)
		case <-timer.C:
			errs = append(errs, errors.New("bus: close: the subscribers and the transport finish closing in the background, once those handlers return"))
		}
		timer.Stop()
	}
	b.closeErr = errors.Join(errs...)
	close(b.closeDone)
	return b.closeErr
}

// release closes the subscribers, the publisher and, if the bus owns it, the
// transport.
func (b *Bus) release() []error {
	var errs []error
	b.mu.Lock()
	for _, s := range b.subscribers {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bus: close subscriber: %w", err))
		}
	}
	b.mu.Unlock()
	if err := b.publisher.Close(); err != nil {
		errs = append(errs, fmt.Errorf("bus: close publisher: %w", err))
	}
	if b.cfg.CloseTransport {
		if err := b.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bus: close transport: %w", err))
		}
	}
	return errs
}

// runningHandlers names the subscriptions with handlers running, e.g.
// "orders.placed/billing: 2".
func (b *Bus) runningHandlers() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var names []string
	for key, n := range b.handlers {
		if c := n.Load(); c > 0 {
			names = append(names, fmt.Sprintf("%s: %d", key, c))
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// waitIdle waits for idle until ctx is done or grace has passed. It reports
// whether idle was closed.
func waitIdle(ctx context.Context, idle <-chan struct{}, grace time.Duration) bool {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
	case <-timer.C:
	}
	return false
}

// isClosed reports whether Close has started, without taking b.mu: Publish
// asks on every call.
func (b *Bus) isClosed() bool {
	select {
	case <-b.stopCtx.Done():
		return true
	default:
		return false
	}
}

// topic returns the wire topic of an event name.
func (b *Bus) topic(event string) string {
	if t, ok := b.cfg.Topics[event]; ok {
		return t
	}
	return event
}
