package transporttest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
)

// Event is the event type the suite publishes. Its wire name is fixed; each
// case maps it to a topic of its own through bus.Config.Topics.
type Event struct {
	Run string `json:"run"` // the case's id
	Seq int    `json:"seq"`
	Key string `json:"key,omitempty"`
}

// EventName is the suite's wire name.
func (Event) EventName() string { return "busline.conformance" }

// env is one case's world: a transport, a topic of its own, and ids.
type env struct {
	t     *testing.T
	h     *Harness
	tr    transports.Transport
	id    string
	topic string
}

func (h *Harness) setup(t *testing.T) *env {
	t.Helper()
	id := uuid.NewString()[:8]
	return &env{t: t, h: h, tr: h.open(t), id: id, topic: "conformance." + id}
}

// group returns a group name unique to the case.
func (e *env) group(name string) string { return name + "-" + e.id }

// newBus returns a bus on the case's transport and topic, closed at the end
// of the case.
func (e *env) newBus(cfg bus.Config) *bus.Bus {
	e.t.Helper()
	return e.newBusOn(e.tr, cfg)
}

// newBusOn is newBus over tr, a wrapper of the case's transport.
func (e *env) newBusOn(tr transports.Transport, cfg bus.Config) *bus.Bus {
	e.t.Helper()
	if cfg.Service == "" {
		cfg.Service = "conformance"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Topics = map[string]string{Event{}.EventName(): e.topic}
	b, err := bus.New(tr, cfg)
	if err != nil {
		e.t.Fatalf("bus.New: %v", err)
	}
	e.t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// run starts b in the background; it stops at the end of the case.
func (e *env) run(b *bus.Bus) { Start(e.t, b) }

// recordingInstance starts a new running instance of group that records
// every event it handles: the "next process" of a case.
func (e *env) recordingInstance(group string, opts ...bus.SubscribeOption) (*bus.Bus, *recorder) {
	e.t.Helper()
	b := e.newBus(bus.Config{})
	rec := newRecorder()
	err := bus.Subscribe(b, group, func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	}, opts...)
	if err != nil {
		e.t.Fatalf("Subscribe %s: %v", group, err)
	}
	e.run(b)
	return b, rec
}

// publish publishes n events with sequence numbers from 0, keyed by keyOf
// when it is not nil.
func (e *env) publish(b *bus.Bus, n int, keyOf func(i int) string) {
	e.t.Helper()
	for i := range n {
		ev := Event{Run: e.id, Seq: i}
		var opts []bus.PublishOption
		if keyOf != nil {
			ev.Key = keyOf(i)
			opts = append(opts, bus.WithKey(ev.Key))
		}
		if err := bus.Publish(context.Background(), b, ev, opts...); err != nil {
			e.t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// delivery is one handler call as a case records it.
type delivery struct {
	Event Event
	Meta  bus.Metadata
	At    time.Time
}

// recorder records handler calls.
type recorder struct {
	mu    sync.Mutex
	calls []delivery
	added chan struct{}
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{}, 1)} }

func (r *recorder) record(ctx context.Context, ev Event) {
	md, _ := bus.MetadataFrom(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, delivery{Event: ev, Meta: md, At: time.Now()})
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.calls...)
}

// waitFor waits until cond holds over the calls so far, or fails the test
// after the harness timeout.
func (r *recorder) waitFor(e *env, what string, cond func([]delivery) bool) []delivery {
	e.t.Helper()
	deadline := time.NewTimer(e.h.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		calls := r.snapshot()
		if cond(calls) {
			return calls
		}
		select {
		case <-r.added:
		case <-tick.C:
		case <-deadline.C:
			e.t.Fatalf("timed out after %v waiting for %s; %d handler calls so far", e.h.Timeout, what, len(r.snapshot()))
		}
	}
}

// waitProgress is waitFor for cases that deliver thousands of messages: it
// fails only when no handler call came for the harness timeout, so a slow
// machine that still makes progress does not fail the case. It checks on
// its ticker only, not on every call: a check copies and counts every call
// so far, and doing that per call would take a core from the transport
// under test while it is measured.
func (r *recorder) waitProgress(e *env, what string, cond func([]delivery) bool) []delivery {
	e.t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	seen, last := 0, time.Now()
	for {
		calls := r.snapshot()
		if cond(calls) {
			return calls
		}
		if len(calls) > seen {
			seen, last = len(calls), time.Now()
		} else if time.Since(last) > e.h.Timeout {
			e.t.Fatalf("no progress for %v waiting for %s; %d handler calls so far", e.h.Timeout, what, len(calls))
		}
		<-tick.C
	}
}

// distinct returns the number of distinct sequence numbers in calls.
func distinct(calls []delivery) int {
	seen := map[int]bool{}
	for _, c := range calls {
		seen[c.Event.Seq] = true
	}
	return len(seen)
}

// atLeast returns a condition: at least n distinct events handled.
func atLeast(n int) func([]delivery) bool {
	return func(calls []delivery) bool { return distinct(calls) >= n }
}
