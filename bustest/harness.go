package bustest

import (
	"context"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/memory"
)

// TB is the part of testing.TB the harness uses. *testing.T, *testing.B
// and *testing.F implement it.
type TB interface {
	Helper()
	Cleanup(func())
	Context() context.Context
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// DefaultTimeout is how long a wait waits unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// Harness is a running bus on a memory transport of its own, for one test.
// Register handlers on Bus exactly as the application does (bus.Subscribe);
// they start at once. The harness records every publish, every handler
// attempt and every lane move, which the Wait functions and their snapshot
// companions (Handled, Published) read. It is safe for concurrent use; the
// Wait functions, like t.Fatal, must be called from the test's goroutine.
type Harness struct {
	t         TB
	bus       *bus.Bus
	transport *memory.Transport
	clock     *Clock
	codec     bus.Codec
	timeout   time.Duration
	rec       *recorder
}

// Option changes one New call.
type Option func(*options)

type options struct {
	config  bus.Config
	clock   *Clock
	timeout time.Duration
}

// WithConfig sets the bus's configuration, as the application builds it
// (for example from config.Config.BusConfig). Its Observer, if any, is still
// called: the harness observes alongside it. Defaults differing from
// bus.New's: Service "bustest", ShutdownGrace 5s.
func WithConfig(cfg bus.Config) Option {
	return func(o *options) { o.config = cfg }
}

// WithClock makes c the clock of the transport's timer heap
// (memory.Config.Clock): delayed redeliveries and scheduled publishes are
// due only when c.Advance reaches their time. Default: real time.
func WithClock(c *Clock) Option {
	return func(o *options) { o.clock = c }
}

// WithTimeout sets how long each wait waits before failing the test.
// Default: DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// New starts a bus on a new memory transport, for the test t, and closes
// both when t ends (t.Cleanup), failing t if Close reports an error; no
// goroutine of the harness outlives the test. It fails t at once if the
// configuration is invalid.
func New(t TB, opts ...Option) *Harness {
	t.Helper()
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := o.config
	if cfg.Service == "" {
		cfg.Service = "bustest"
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	if cfg.Codec == nil {
		cfg.Codec = bus.JSON
	}
	rec := newRecorder(cfg.Observer)
	cfg.Observer = rec
	var mcfg memory.Config
	if o.clock != nil {
		mcfg.Clock = o.clock
	}
	tr := memory.New(mcfg)
	b, err := bus.New(tr, cfg)
	if err != nil {
		_ = tr.Close()
		t.Fatalf("bustest.New: %v", err)
		return nil
	}
	h := &Harness{t: t, bus: b, transport: tr, clock: o.clock, codec: cfg.Codec, timeout: o.timeout, rec: rec}

	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case err := <-runDone:
		_ = tr.Close()
		t.Fatalf("bustest.New: bus.Run: %v", err)
		return nil
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+5*time.Second)
		defer cancel()
		err := b.Close(ctx)
		if runErr := <-runDone; runErr != nil && err == nil {
			err = runErr
		}
		if cerr := tr.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			t.Errorf("bustest: closing the bus: %v", err)
		}
	})
	return h
}

// Bus returns the harness's bus, running: pass it to the application's
// registration code, and publish through it.
func (h *Harness) Bus() *bus.Bus { return h.bus }

// Transport returns the memory transport under the bus, for inspection
// (Pending, Waiting, Backlog) and for a bus.PoisonLane.
func (h *Harness) Transport() *memory.Transport { return h.transport }

// Clock returns the clock passed with WithClock, or nil.
func (h *Harness) Clock() *Clock { return h.clock }

// Advance moves the harness's clock forward by d (see Clock.Advance). It
// fails the test if the harness was made without WithClock.
func (h *Harness) Advance(d time.Duration) {
	h.t.Helper()
	if h.clock == nil {
		h.t.Fatalf("bustest: Advance(%v) on a harness without a clock: pass bustest.WithClock(bustest.NewClock(start)) to New", d)
		return
	}
	h.clock.Advance(d)
}
