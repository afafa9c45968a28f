package transporttest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
)

// RunBus runs busline's own cases through the typed API.
func RunBus(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"RoundTrip", testRoundTrip},
		{"FanOutAcrossGroups", testFanOut},
		{"CompetingConsumers", testCompetingConsumers},
		{"PerKeyOrder", testPerKeyOrder},
		{"KeyOrderedConcurrency", testKeyOrderedConcurrency},
		{"FailedMessageRedelivered", testFailedMessageRedelivered},
		{"ForeignPayloadHandled", testForeignPayload},
		{"CloudEventsModesAndContentTypes", testCloudEventsModes},
		{"GracefulShutdownFinishesInFlight", testShutdownFinishes},
		{"GracefulShutdownLeavesUnfinished", testShutdownLeavesUnfinished},
		{"CloseBoundedByContext", testCloseBoundedByContext},
		{"CloseIdempotent", testCloseIdempotent},
		{"DuplicateHandler", testDuplicateHandler},
		{"OpenByKind", testOpenByKind},
	})
}

func testRoundTrip(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{Service: "roundtrip"})
	rec := newRecorder()
	group := e.group("billing")
	mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)

	before := time.Now().Add(-time.Second)
	sent := Event{Run: e.id, Seq: 7, Key: "customer-1"}
	err := bus.Publish(context.Background(), b, sent,
		bus.WithKey("customer-1"), bus.WithCorrelationID("corr-1"), bus.WithMetadata("tenant", "acme"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	calls := rec.waitFor(e, "the event", atLeast(1))
	got := calls[0]
	if got.Event != sent {
		t.Errorf("handled %+v, published %+v", got.Event, sent)
	}
	md := got.Meta
	checks := []struct{ field, got, want string }{
		{"Event", md.Event, Event{}.EventName()},
		{"Source", md.Source, "roundtrip"},
		{"Topic", md.Topic, e.topic},
		{"Group", md.Group, group},
		{"Key", md.Key, "customer-1"},
		{"CorrelationID", md.CorrelationID, "corr-1"},
		{"Raw[tenant]", md.Raw.Get("tenant"), "acme"},
		{"Raw[ce_specversion]", md.Raw.Get(bus.MetaSpecVersion), "1.0"},
		{"Raw[content-type]", md.Raw.Get(bus.MetaContentType), "application/json"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("Metadata.%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if md.ID == "" || md.ID != md.Raw.Get(bus.MetaID) {
		t.Errorf("Metadata.ID = %q, ce_id = %q: want the same non-empty id", md.ID, md.Raw.Get(bus.MetaID))
	}
	if md.Attempt != 1 {
		t.Errorf("Metadata.Attempt = %d, want 1", md.Attempt)
	}
	if md.PublishedAt.Before(before) || md.PublishedAt.After(time.Now()) {
		t.Errorf("Metadata.PublishedAt = %v, want between %v and now", md.PublishedAt, before)
	}
}

func testFanOut(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	const n = 20
	recs := map[string]*recorder{}
	for _, g := range []string{"billing", "shipping"} {
		rec := newRecorder()
		recs[g] = rec
		mustSubscribe(t, b, e.group(g), func(ctx context.Context, ev Event) error {
			rec.record(ctx, ev)
			return nil
		})
	}
	e.run(b)
	e.publish(b, n, nil)
	for g, rec := range recs {
		calls := rec.waitFor(e, fmt.Sprintf("%d events in group %s", n, g), atLeast(n))
		if d := distinct(calls); d != n {
			t.Errorf("group %s handled %d distinct events, want %d", g, d, n)
		}
	}
}

func testCompetingConsumers(t *testing.T, h *Harness) {
	e := h.setup(t)
	group := e.group("workers")
	const n = 60
	var total atomic.Int64
	rec := newRecorder()
	perInstance := make([]atomic.Int64, 2)
	publisher := e.newBus(bus.Config{})
	for i := range perInstance {
		b := e.newBus(bus.Config{})
		mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
			perInstance[i].Add(1)
			total.Add(1)
			rec.record(ctx, ev)
			time.Sleep(5 * time.Millisecond) // long enough for the other instance to take work
			return nil
		})
		e.run(b)
	}
	e.publish(publisher, n, nil)
	calls := rec.waitFor(e, fmt.Sprintf("%d events across two instances", n), atLeast(n))
	if d := distinct(calls); d != n {
		t.Errorf("handled %d distinct events, want %d", d, n)
	}
	a, b := perInstance[0].Load(), perInstance[1].Load()
	if a == 0 || b == 0 {
		t.Errorf("instances handled %d and %d events: both should share the group's work", a, b)
	}
	if dup := total.Load() - n; dup > 0 {
		t.Logf("%d duplicate deliveries (at-least-once)", dup)
	}
}

func testPerKeyOrder(t *testing.T, h *Harness) {
	e := h.setup(t)
	if !e.tr.Features().OrderedPerKey {
		t.Skip("transport does not keep per-key order")
	}
	b := e.newBus(bus.Config{})
	rec := newRecorder()
	mustSubscribe(t, b, e.group("ordered"), func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)
	const n = 200
	e.publish(b, n, func(i int) string { return fmt.Sprintf("key-%d", i%5) })
	calls := rec.waitProgress(e, fmt.Sprintf("%d keyed events", n), atLeast(n))
	last := map[string]int{}
	for _, c := range calls {
		if prev, ok := last[c.Event.Key]; ok && c.Event.Seq < prev {
			t.Fatalf("key %s: event %d handled after %d", c.Event.Key, c.Event.Seq, prev)
		}
		last[c.Event.Key] = c.Event.Seq
	}
}

func testFailedMessageRedelivered(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	rec := newRecorder()
	var failures atomic.Int64
	mustSubscribe(t, b, e.group("flaky"), func(ctx context.Context, ev Event) error {
		if ev.Seq == 3 && failures.Add(1) == 1 {
			return errors.New("transient failure")
		}
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)
	e.publish(b, 5, nil)
	calls := rec.waitFor(e, "all 5 events, one of them after a failure", atLeast(5))
	for _, c := range calls {
		if c.Event.Seq == 3 && c.Meta.Attempt < 2 {
			t.Errorf("event 3 succeeded on attempt %d, want >= 2 after one failure", c.Meta.Attempt)
		}
	}
	if failures.Load() < 1 {
		t.Error("the failing handler was never called for event 3")
	}
}

// testForeignPayload publishes through the transport's plain publisher, the
// way a client in another language would, with only the CloudEvents headers.
func testForeignPayload(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	rec := newRecorder()
	mustSubscribe(t, b, e.group("interop"), func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)
	pub, err := e.tr.Publisher()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	defer pub.Close()
	msg := message.NewMessage("foreign-1", []byte(fmt.Sprintf(`{"run":%q,"seq":1}`, e.id)))
	msg.Metadata.Set(bus.MetaID, "foreign-1")
	msg.Metadata.Set(bus.MetaType, Event{}.EventName())
	msg.Metadata.Set(bus.MetaSource, "python-service")
	msg.Metadata.Set(bus.MetaSpecVersion, "1.0")
	if err := pub.Publish(e.topic, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	calls := rec.waitFor(e, "the foreign event", atLeast(1))
	if md := calls[0].Meta; md.ID != "foreign-1" || md.Source != "python-service" {
		t.Errorf("metadata = id %q source %q, want foreign-1 and python-service", md.ID, md.Source)
	}
}

func testCloudEventsModes(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	group := e.group("modes")
	rec := newRecorder()
	mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)
	pub, err := e.tr.Publisher()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	defer pub.Close()
	data := func(seq int) string { return fmt.Sprintf(`{"run":%q,"seq":%d}`, e.id, seq) }
	binary := func(seq int, contentType string) *message.Message {
		id := fmt.Sprintf("%s-binary-%d", e.id, seq)
		m := message.NewMessage(id, []byte(data(seq)))
		m.Metadata.Set(bus.MetaID, id)
		m.Metadata.Set(bus.MetaType, Event{}.EventName())
		m.Metadata.Set(bus.MetaSource, "/other/service")
		m.Metadata.Set(bus.MetaSpecVersion, "1.0")
		m.Metadata.Set(bus.MetaContentType, contentType)
		return m
	}
	structured := func(seq int, body string) *message.Message {
		m := message.NewMessage(fmt.Sprintf("%s-wire-%d", e.id, seq), []byte(body))
		m.Metadata.Set(bus.MetaContentType, "application/cloudevents+json; charset=UTF-8")
		return m
	}
	msgs := []*message.Message{
		binary(0, "application/json; charset=utf-8"), // the bindings' own example
		binary(1, "Application/JSON"),
		structured(2, fmt.Sprintf(`{"specversion":"1.0","id":"%s-structured-2","type":%q,"source":"/sdk","datacontenttype":"application/json","partitionkey":"k2","data":%s}`,
			e.id, Event{}.EventName(), data(2))),
		structured(3, fmt.Sprintf(`{"specversion":"1.0","id":"%s-structured-3","type":%q,"source":"/sdk","data_base64":%q}`,
			e.id, Event{}.EventName(), base64.StdEncoding.EncodeToString([]byte(data(3))))),
	}
	if err := pub.Publish(e.topic, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	calls := rec.waitFor(e, "the events in every mode", atLeast(len(msgs)))
	for _, c := range calls {
		want := map[int]string{0: "binary-0", 1: "binary-1", 2: "structured-2", 3: "structured-3"}[c.Event.Seq]
		if c.Meta.ID != e.id+"-"+want {
			t.Errorf("event %d: id %q, want %q", c.Event.Seq, c.Meta.ID, e.id+"-"+want)
		}
		if c.Event.Seq == 2 && (c.Meta.Key != "k2" || c.Meta.Source != "/sdk") {
			t.Errorf("structured event: key %q source %q, want k2 and /sdk from the body", c.Meta.Key, c.Meta.Source)
		}
	}
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := lane.List(e.h.waitCtx(t)); err != nil || len(list) != 0 {
		t.Errorf("poison lane: %s, %v; want empty", describe(list), err)
	}
}

func testShutdownFinishes(t *testing.T, h *Harness) {
	e := h.setup(t)
	group := e.group("slow")
	b := e.newBus(bus.Config{ShutdownGrace: 10 * time.Second})
	started := make(chan struct{})
	var finished atomic.Bool
	mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		return ctx.Err()
	})
	e.run(b)
	e.publish(b, 1, nil)
	waitClosed(t, h, started, "handler start")
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the in-flight handler finished within the grace period")
	}
	// The message was acked: a new instance of the group gets nothing.
	again, rec := e.recordingInstance(group)
	e.publish(again, 1, func(int) string { return "marker" })
	calls := rec.waitFor(e, "the marker event", func(c []delivery) bool {
		for _, d := range c {
			if d.Event.Key == "marker" {
				return true
			}
		}
		return false
	})
	for _, c := range calls {
		if c.Event.Key != "marker" {
			t.Errorf("event acked before shutdown was delivered again: %+v", c.Event)
		}
	}
}

func testShutdownLeavesUnfinished(t *testing.T, h *Harness) {
	e := h.setup(t)
	group := e.group("stuck")
	b := e.newBus(bus.Config{ShutdownGrace: 200 * time.Millisecond})
	started := make(chan struct{})
	var cancelled atomic.Bool
	mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
		close(started)
		<-ctx.Done()
		cancelled.Store(true)
		return ctx.Err()
	})
	e.run(b)
	e.publish(b, 1, nil)
	waitClosed(t, h, started, "handler start")
	begin := time.Now()
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !cancelled.Load() {
		t.Fatal("Close returned without cancelling the handler that outlived the grace period")
	}
	if took := time.Since(begin); took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("Close took %v, want about the 200ms grace period", took)
	}
	// The unfinished message was not acked: the next instance handles it.
	_, rec := e.recordingInstance(group)
	calls := rec.waitFor(e, "redelivery of the unfinished message", atLeast(1))
	if calls[0].Event.Seq != 0 {
		t.Errorf("redelivered %+v, want event 0", calls[0].Event)
	}
}

func testCloseBoundedByContext(t *testing.T, h *Harness) {
	e := h.setup(t)
	group := e.group("deaf")
	b := e.newBus(bus.Config{ShutdownGrace: time.Second})
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
		if ev.Seq == 0 {
			select {
			case <-started:
			default:
				close(started)
				<-release // ignores its context
			}
		}
		return nil
	})
	e.run(b)
	e.publish(b, 1, nil)
	waitClosed(t, h, started, "handler start")
	const limit = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	begin := time.Now()
	err := b.Close(ctx)
	took := time.Since(begin)
	t.Logf("Close with a handler that ignores its context: %v, %v", took, err)
	if err == nil || !strings.Contains(err.Error(), "still running") || !strings.Contains(err.Error(), group) {
		t.Errorf("Close = %v, want an error naming the handler still running in group %s", err, group)
	}
	// The bound is Close's own select on its context, plus the short waits
	// it documents.
	if took > limit+2*time.Second {
		t.Errorf("Close took %v with a %v context: it waited for the stuck handler", took, limit)
	}
	once.Do(func() { close(release) })
	_, rec := e.recordingInstance(group)
	if calls := rec.waitFor(e, "redelivery of the stuck message", atLeast(1)); calls[0].Event.Seq != 0 {
		t.Errorf("redelivered %+v, want event 0", calls[0].Event)
	}
}

func testCloseIdempotent(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	mustSubscribe(t, b, e.group("any"), func(context.Context, Event) error { return nil })
	e.run(b)
	for i := range 3 {
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := bus.Publish(context.Background(), b, Event{}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	err := bus.Subscribe(b, e.group("late"), func(context.Context, Event) error { return nil })
	if !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if err := b.Run(context.Background()); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
}

func testDuplicateHandler(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	group := e.group("dup")
	mustSubscribe(t, b, group, func(context.Context, Event) error { return nil })
	err := bus.Subscribe(b, group, func(context.Context, Event) error { return nil })
	if !errors.Is(err, bus.ErrDuplicateHandler) {
		t.Errorf("second Subscribe = %v, want ErrDuplicateHandler", err)
	}
}

func testOpenByKind(t *testing.T, h *Harness) {
	if h.Kind == "" {
		t.Skip("Harness.Kind not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	tr, err := transports.Open(ctx, h.Kind, h.Params)
	if err != nil {
		t.Fatalf("transports.Open(%q): %v", h.Kind, err)
	}
	defer tr.Close()
	if err := tr.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
}

func mustSubscribe(t *testing.T, b *bus.Bus, group string, h bus.Handler[Event]) {
	t.Helper()
	if err := bus.Subscribe(b, group, h); err != nil {
		t.Fatalf("Subscribe %s: %v", group, err)
	}
}

func waitClosed(t *testing.T, h *Harness, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(h.Timeout):
		t.Fatalf("timed out after %v waiting for %s", h.Timeout, what)
	}
}

func testKeyOrderedConcurrency(t *testing.T, h *Harness) {
	e := h.setup(t)
	probe, err := e.tr.Subscriber("probe-" + e.id)
	if err != nil {
		t.Fatal(err)
	}
	_, concurrent := probe.(transports.ConcurrentConsumer)
	_ = probe.Close()
	if !concurrent || !e.tr.Features().OrderedPerKey {
		t.Skip("transport's subscribers are no transports.ConcurrentConsumer")
	}
	b := e.newBus(bus.Config{})
	group := e.group("keyed")
	const n, keys, workers = 10000, 100, 16
	var (
		mu       sync.Mutex
		attempts = map[int]int{}
		running  int
		peak     int
	)
	rec := newRecorder()
	mustSubscribeOpts(t, b, group, func(ctx context.Context, ev Event) error {
		mu.Lock()
		attempts[ev.Seq]++
		failing := attempts[ev.Seq] == 1 && ev.Seq%20 == 7 // 5% fail once
		running++
		peak = max(peak, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		time.Sleep(time.Duration(ev.Seq%3) * 100 * time.Microsecond) // a handler's own work
		if failing {
			return fmt.Errorf("event %d: transient failure", ev.Seq)
		}
		rec.record(ctx, ev)
		return nil
	}, fastRetry, bus.WithConcurrency(workers))
	e.run(b)
	items := make([]bus.BatchItem, 0, 500)
	for i := range n {
		key := fmt.Sprintf("k%d", i%keys)
		items = append(items, bus.Item(Event{Run: e.id, Seq: i, Key: key}, bus.WithKey(key)))
		if len(items) == cap(items) {
			if _, err := bus.PublishBatch(context.Background(), b, items...); err != nil {
				t.Fatal(err)
			}
			items = items[:0]
		}
	}
	calls := rec.waitProgress(e, fmt.Sprintf("%d keyed events", n), atLeast(n))
	last := map[string]int{}
	for _, c := range calls {
		if prev, ok := last[c.Event.Key]; ok && c.Event.Seq < prev {
			t.Errorf("key %s: event %d handled after %d", c.Event.Key, c.Event.Seq, prev)
		}
		last[c.Event.Key] = max(last[c.Event.Key], c.Event.Seq)
	}
	if len(calls) != n {
		t.Errorf("%d handled for %d events", len(calls), n)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d events over %d keys, %d workers: at most %d handlers at once", n, keys, workers, peak)
	if peak < 2 {
		t.Errorf("at most %d handler at once with %d workers: nothing ran in parallel", peak, workers)
	}
}
