package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/memory"
	"github.com/busline/busline/transports/transporttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type badName struct{}

func (badName) EventName() string { return "orders placed" }

type ptrEvent struct{ N int }

func (*ptrEvent) EventName() string { return "ptr.event" }

func setup(t *testing.T, cfg bus.Config) (*bus.Bus, *memory.Transport) {
	t.Helper()
	tr := memory.New(memory.Config{})
	t.Cleanup(func() { _ = tr.Close() })
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Service == "" {
		cfg.Service = "test"
	}
	b, err := bus.New(tr, cfg)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b, tr
}

func run(t *testing.T, b *bus.Bus) { transporttest.Start(t, b) }

func TestValidateName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		wantErr string
	}{
		{"orders.placed", ""},
		{"A-z_0.9", ""},
		{strings.Repeat("a", 200), ""},
		{"", "event name is empty"},
		{strings.Repeat("a", 201), "201 bytes long, at most 200"},
		{"orders placed", `has ' ' at byte 6`},
		{"orders/placed", `has '/' at byte 6`},
		{"ordérs", `has 'é' at byte 3`},
	}
	for _, tt := range tests {
		err := bus.ValidateName("event", tt.name)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateName(%.20q) = %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, bus.ErrInvalidName)):
			t.Errorf("ValidateName(%.20q) = %v, want ErrInvalidName containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tr := memory.New(memory.Config{})
	defer tr.Close()
	_, err := bus.New(tr, bus.Config{
		Service:       "bad service",
		ShutdownGrace: -time.Second,
		Retry:         middleware.RetryPolicy{Attempts: -1},
		Delays:        []time.Duration{time.Second, 0},
		Subscriptions: map[string]bus.SubscriptionConfig{"billing": {Concurrency: 2, Ordered: true}},
	})
	if err == nil {
		t.Fatal("bus.New accepted an invalid config")
	}
	for _, want := range []string{"service name", "ShutdownGrace", "bus.Config.Retry: attempts: must be >= 1 (1 means no immediate retry), got -1", "bus.Config.Delays: delays[1]: must be > 0, got 0s", "ordered needs concurrency 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := bus.New(nil, bus.Config{}); err == nil || !strings.Contains(err.Error(), "nil transport") {
		t.Errorf("bus.New(nil) = %v, want a nil transport error", err)
	}
}

func TestSubscribeBadInput(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, bus.Config{})
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"InvalidEventName", bus.Subscribe(b, "g", func(context.Context, badName) error { return nil }), "event name \"orders placed\""},
		{"InvalidGroup", bus.Subscribe(b, "bad group", func(context.Context, *ptrEvent) error { return nil }), "group name \"bad group\""},
		{"NilHandler", bus.Subscribe[*ptrEvent](b, "g", nil), "nil handler"},
		{"OrderedConcurrent", bus.Subscribe(b, "g2", func(context.Context, *ptrEvent) error { return nil }, bus.WithOrdered(), bus.WithConcurrency(2)), "ordered needs concurrency 1"},
		{"TooConcurrent", bus.Subscribe(b, "g3", func(context.Context, *ptrEvent) error { return nil }, bus.WithConcurrency(5000)), "out of range"},
		{"BadDelay", bus.Subscribe(b, "g4", func(context.Context, *ptrEvent) error { return nil }, bus.WithDelays(-time.Second)), "delays[0]: must be > 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantErr) {
				t.Errorf("Subscribe = %v, want an error containing %q", tt.err, tt.wantErr)
			}
		})
	}
}

func TestPublishBadInput(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, bus.Config{})
	if err := bus.Publish(context.Background(), b, badName{}); !errors.Is(err, bus.ErrInvalidName) {
		t.Errorf("Publish(invalid name) = %v, want ErrInvalidName", err)
	}
	if err := bus.Publish(context.Background(), b, nil); err == nil {
		t.Error("Publish(nil) = nil, want an error")
	}
}

// TestPointerEvents checks that a pointer event type is decoded into a
// fresh value and that publishing from a handler carries the ids on.
func TestPointerEventsAndCausation(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, bus.Config{})
	type seen struct {
		n  int
		md bus.Metadata
	}
	got := make(chan seen, 2)
	err := bus.Subscribe(b, "first", func(ctx context.Context, e *ptrEvent) error {
		md, _ := bus.MetadataFrom(ctx)
		got <- seen{e.N, md}
		if e.N == 1 {
			return bus.Publish(ctx, b, &ptrEvent{N: 2})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, b)
	if err := bus.Publish(context.Background(), b, &ptrEvent{N: 1}, bus.WithCorrelationID("flow-9")); err != nil {
		t.Fatal(err)
	}
	var first, second seen
	for i, into := range []*seen{&first, &second} {
		select {
		case *into = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d not handled", i+1)
		}
	}
	if first.n != 1 || second.n != 2 {
		t.Fatalf("handled %d then %d, want 1 then 2", first.n, second.n)
	}
	if second.md.CausationID != first.md.ID || second.md.CorrelationID != "flow-9" {
		t.Errorf("causation %q correlation %q, want %q and flow-9", second.md.CausationID, second.md.CorrelationID, first.md.ID)
	}
	if _, ok := bus.MetadataFrom(context.Background()); ok {
		t.Error("MetadataFrom outside a handler reported ok")
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("invalid order")
	err := bus.Permanent(base)
	if !bus.IsPermanent(err) || !errors.Is(err, base) {
		t.Errorf("Permanent(%v): IsPermanent %v, Is(base) %v; want both true", base, bus.IsPermanent(err), errors.Is(err, base))
	}
	if bus.IsPermanent(base) || bus.Permanent(nil) != nil {
		t.Error("a plain error is permanent, or Permanent(nil) is not nil")
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, bus.Config{})
	run(t, b)
	if err := b.Run(context.Background()); !errors.Is(err, bus.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestRawEvent(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, bus.Config{})
	got := make(chan int, 1)
	if err := bus.Subscribe(b, "raw", func(ctx context.Context, e *ptrEvent) error {
		got <- e.N
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	run(t, b)
	if err := bus.Publish(context.Background(), b, bus.RawEvent{Name: "ptr.event", Data: []byte(`{"N":7}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 7 {
			t.Errorf("handled N=%d, want 7", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("raw event not handled")
	}
}

// TestDerivedContextsCancelledOnClose: a context a handler derives from its
// own is cancelled when the grace period ends, like the handler's.
func TestDerivedContextsCancelledOnClose(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, bus.Config{ShutdownGrace: 100 * time.Millisecond})
	started := make(chan struct{})
	if err := bus.Subscribe(b, "derived", func(ctx context.Context, e *ptrEvent) error {
		child, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		close(started)
		<-child.Done()
		return child.Err()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-b.Running()
	if err := bus.Publish(context.Background(), b, &ptrEvent{N: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler not started")
	}
	begin := time.Now()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v (the derived context was not cancelled, so the handler outlived Close's wait)", err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("shutdown took %v, want about the 100ms grace", took)
	}
}

// stalledProvisioner is a transport whose group provisioning hangs, as a
// stalled broker's would, until its context ends.
type stalledProvisioner struct {
	*memory.Transport
	entered chan struct{}
}

func (s stalledProvisioner) ProvisionGroup(ctx context.Context, _, _ string) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestCloseDoesNotWaitForAStalledSubscribe(t *testing.T) {
	t.Parallel()
	tr := stalledProvisioner{Transport: memory.New(memory.Config{}), entered: make(chan struct{}, 1)}
	t.Cleanup(func() { _ = tr.Close() })
	b, err := bus.New(tr, bus.Config{Service: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	subscribed := make(chan error, 1)
	go func() {
		subscribed <- bus.Subscribe(b, "billing", func(context.Context, *ptrEvent) error { return nil })
	}()
	select {
	case <-tr.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe never provisioned the group")
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close(context.Background()) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a Subscribe stuck on the broker")
	}
	if err := <-subscribed; !errors.Is(err, context.Canceled) {
		t.Errorf("the stalled Subscribe returned %v, want the cancellation Close caused", err)
	}
}

// timeoutBroker is a transport whose broker takes a delivery back after a
// minute unsettled, as RabbitMQ's consumer_timeout does.
type timeoutBroker struct{ *memory.Transport }

func (timeoutBroker) ConsumerTimeout() time.Duration { return time.Minute }

func TestSubscribeRefusesAttemptsBeyondConsumerTimeout(t *testing.T) {
	t.Parallel()
	tr := timeoutBroker{memory.New(memory.Config{})}
	t.Cleanup(func() { _ = tr.Close() })
	b, err := bus.New(tr, bus.Config{Service: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	h := func(context.Context, *ptrEvent) error { return nil }
	err = bus.Subscribe(b, "slow", h, bus.WithTimeout(30*time.Second)) // 3 attempts: 90s
	if err == nil || !strings.Contains(err.Error(), "consumer timeout of 1m0s") {
		t.Errorf("Subscribe with 3 attempts of 30s on a 1m consumer timeout = %v, want it refused", err)
	}
	if err := bus.Subscribe(b, "fast", h, bus.WithTimeout(10*time.Second)); err != nil {
		t.Errorf("Subscribe with 3 attempts of 10s on a 1m consumer timeout: %v", err)
	}
	if err := bus.Subscribe(b, "untimed", h); err != nil {
		t.Errorf("Subscribe without a timeout: %v", err)
	}
}
