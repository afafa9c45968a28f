package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

// handlerStopWait is how long Close waits for handlers to return once their
// contexts were cancelled.
const handlerStopWait = 5 * time.Second

// Bus publishes typed events and runs typed handlers over one transport.
// Create it with New, register handlers with Subscribe, start them with Run
// and stop with Close. A Bus is safe for concurrent use.
type Bus struct {
	cfg       Config
	transport transports.Transport
	publisher message.Publisher
	router    *message.Router
	logger    *slog.Logger

	// inflight counts messages handed to handlers, for Close's grace period.
	inflight *inflight
	// stopping is closed when Close starts: subscriptions stop taking
	// messages.
	stopping chan struct{}
	// drained is closed when Close has waited for in-flight handlers.
	drained chan struct{}
	// handlerCtx is the parent of every handler context's cancellation; it
	// is cancelled when the grace period ends.
	handlerCtx    context.Context
	cancelHandler context.CancelFunc

	mu          sync.Mutex
	handlers    map[string]bool // "event/group" registered
	subscribers map[string]*drainSubscriber
	running     bool
	closed      bool
	closeDone   chan struct{}
	closeErr    error
	runCtx      context.Context
	cancelRun   context.CancelFunc
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
	wlog := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
	// The router's own close timeout only matters when it closes itself after
	// Close drained its handlers; it must not cut the grace period short.
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.ShutdownGrace + handlerStopWait}, wlog)
	if err != nil {
		_ = pub.Close()
		return nil, fmt.Errorf("bus.New: router: %w", err)
	}
	b := &Bus{
		cfg:         cfg,
		transport:   t,
		publisher:   pub,
		router:      router,
		logger:      cfg.Logger,
		stopping:    make(chan struct{}),
		inflight:    newInflight(),
		drained:     make(chan struct{}),
		handlers:    map[string]bool{},
		subscribers: map[string]*drainSubscriber{},
		closeDone:   make(chan struct{}),
	}
	b.handlerCtx, b.cancelHandler = context.WithCancel(context.Background())
	b.runCtx, b.cancelRun = context.WithCancel(context.Background())
	return b, nil
}

// Transport returns the transport the bus runs on.
func (b *Bus) Transport() transports.Transport { return b.transport }

// Router returns the Watermill router that runs the handlers, for adding
// plain Watermill handlers or plugins before Run.
func (b *Bus) Router() *message.Router { return b.router }

// Run starts the handlers registered with Subscribe and blocks until ctx is
// done or Close is called; handlers subscribed while it runs start at once.
// When ctx is done, Run shuts down as Close does, with cfg.ShutdownGrace, and
// returns nil. It returns ErrRunning if the bus already runs and ErrClosed
// after Close.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return ErrClosed
	case b.running:
		b.mu.Unlock()
		return ErrRunning
	}
	b.running = true
	b.mu.Unlock()

	routerErr := make(chan error, 1)
	go func() { routerErr <- b.router.Run(b.runCtx) }()
	select {
	case <-b.router.Running():
	case err := <-routerErr:
		_ = b.Close(context.Background())
		return fmt.Errorf("bus: run: %w", err)
	}
	select {
	case <-ctx.Done():
		err := b.Close(context.Background())
		<-routerErr
		return err
	case <-b.closeDone:
		<-routerErr
		return nil
	}
}

// Close stops the bus gracefully: subscriptions stop taking messages,
// in-flight handlers get until the grace period ends (ctx's deadline or
// cfg.ShutdownGrace, whichever comes first) to finish, then their contexts
// are cancelled. A message whose handler did not finish is not acked, so the
// broker redelivers it; cancellation by Close is never treated as a handler
// failure. Close is idempotent: later calls wait for the first and return
// its result.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.closeDone
		return b.closeErr
	}
	b.closed = true
	wasRunning := b.running
	b.mu.Unlock()

	close(b.stopping)
	idle := b.inflight.close()
	var errs []error
	if !waitIdle(ctx, idle, b.cfg.ShutdownGrace) {
		b.cancelHandler()
		if !waitIdle(context.Background(), idle, handlerStopWait) {
			errs = append(errs, fmt.Errorf("bus: close: handlers still running %v after their contexts were cancelled; their messages will be redelivered", handlerStopWait))
		}
	}
	b.cancelHandler()
	close(b.drained)
	if wasRunning {
		if err := b.router.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bus: close router: %w", err))
		}
	}
	b.mu.Lock()
	for _, s := range b.subscribers {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bus: close subscriber: %w", err))
		}
	}
	b.mu.Unlock()
	b.cancelRun()
	if err := b.publisher.Close(); err != nil {
		errs = append(errs, fmt.Errorf("bus: close publisher: %w", err))
	}
	if b.cfg.CloseTransport {
		if err := b.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bus: close transport: %w", err))
		}
	}
	b.closeErr = errors.Join(errs...)
	close(b.closeDone)
	return b.closeErr
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

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// topic returns the wire topic of an event name.
func (b *Bus) topic(event string) string {
	if t, ok := b.cfg.Topics[event]; ok {
		return t
	}
	return event
}
