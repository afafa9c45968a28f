package transporttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
)

// RunBatch runs the cases of bus.PublishBatch and of ids set by callers.
func RunBatch(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"BatchArrivesOnceInKeyOrder", testBatch},
		{"BatchFailureSaysWhatWasSent", testBatchFailure},
		{"CallerIDs", testCallerIDs},
	})
}

// Other is a second event type, for batches of several types.
type Other struct {
	Run string `json:"run"`
	Seq int    `json:"seq"`
}

// EventName is Other's wire name.
func (Other) EventName() string { return "busline.conformance.other" }

// batchBus returns a bus on tr whose Event and Other go to topics of the
// case.
func (e *env) batchBus(tr transports.Transport) *bus.Bus {
	e.t.Helper()
	b, err := bus.New(tr, bus.Config{Service: "conformance", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Topics: map[string]string{Event{}.EventName(): e.topic, Other{}.EventName(): e.topic + ".other"}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func testBatch(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.batchBus(e.tr)
	group := e.group("batch")
	rec := newRecorder()
	others := newRecorder()
	mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	if err := bus.Subscribe(b, group, func(ctx context.Context, o Other) error {
		others.record(ctx, Event{Run: o.Run, Seq: o.Seq})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.run(b)
	const n, keys = 1000, 10
	items := make([]bus.BatchItem, 0, n+keys)
	for i := range n {
		key := fmt.Sprintf("k%d", i%keys)
		items = append(items, bus.Item(Event{Run: e.id, Seq: i, Key: key}, bus.WithKey(key)))
		if i%100 == 0 {
			items = append(items, bus.Item(Other{Run: e.id, Seq: i}))
		}
	}
	ids, err := bus.PublishBatch(context.Background(), b, items...)
	if err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	if len(ids) != len(items) {
		t.Fatalf("%d ids for %d events", len(ids), len(items))
	}
	calls := rec.waitFor(e, fmt.Sprintf("%d batched events", n), atLeast(n))
	others.waitFor(e, "the batched events of the other type", atLeast(n/100))
	want := map[int]string{}
	for i, it := range items {
		if ev, ok := it.Event.(Event); ok {
			want[ev.Seq] = ids[i]
		}
	}
	last := map[string]int{}
	seen := map[int]int{}
	for _, c := range calls {
		seen[c.Event.Seq]++
		if c.Meta.ID != want[c.Event.Seq] {
			t.Errorf("event %d arrived with id %q, PublishBatch returned %q", c.Event.Seq, c.Meta.ID, want[c.Event.Seq])
		}
		if prev, ok := last[c.Event.Key]; ok && c.Event.Seq < prev && e.tr.Features().OrderedPerKey {
			t.Errorf("key %s: event %d after %d", c.Event.Key, c.Event.Seq, prev)
		}
		last[c.Event.Key] = max(last[c.Event.Key], c.Event.Seq)
	}
	for seq, k := range seen {
		if k != 1 {
			t.Errorf("event %d arrived %d times", seq, k)
		}
	}
}

// refusingTopic wraps a transport so that publishes to one topic fail with
// err.
type refusingTopic struct {
	transports.Transport
	topic string
	err   error
}

func (r refusingTopic) Publisher() (message.Publisher, error) {
	p, err := r.Transport.Publisher()
	return refusingPublisher{Publisher: p, topic: r.topic, err: r.err}, err
}

type refusingPublisher struct {
	message.Publisher
	topic string
	err   error
}

func (p refusingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == p.topic {
		return p.err
	}
	return p.Publisher.Publish(topic, msgs...)
}

func testBatchFailure(t *testing.T, h *Harness) {
	e := h.setup(t)
	// A send that timed out after writing (ErrMaybeSent) leaves its events
	// maybe sent; one the broker refused leaves them not sent.
	b := e.batchBus(refusingTopic{Transport: e.tr, topic: e.topic + ".other", err: transports.MaybeSent(errors.New("refused by the test"))})
	refused := e.batchBus(refusingTopic{Transport: e.tr, topic: e.topic + ".other", err: errors.New("refused by the test")})
	items := []bus.BatchItem{
		bus.Item(Event{Run: e.id, Seq: 0}), bus.Item(Event{Run: e.id, Seq: 1}),
		bus.Item(Other{Run: e.id, Seq: 2}),
	}
	ids, err := bus.PublishBatch(context.Background(), refused, items...)
	var be *bus.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("PublishBatch with a refused topic = %v, want a *bus.BatchError", err)
	}
	if !slices.Equal(be.Sent, ids[:2]) || !slices.Equal(be.NotSent, ids[2:]) || len(be.MaybeSent) != 0 {
		t.Errorf("refused: BatchError sent %v maybe %v not %v; want sent %v, not sent %v", be.Sent, be.MaybeSent, be.NotSent, ids[:2], ids[2:])
	}
	ids, err = bus.PublishBatch(context.Background(), b, items...)
	if !errors.As(err, &be) {
		t.Fatalf("PublishBatch with a timed-out topic = %v, want a *bus.BatchError", err)
	}
	if !slices.Equal(be.Sent, ids[:2]) || !slices.Equal(be.MaybeSent, ids[2:]) || len(be.NotSent) != 0 {
		t.Errorf("BatchError sent %v maybe %v not %v; want sent %v, maybe %v", be.Sent, be.MaybeSent, be.NotSent, ids[:2], ids[2:])
	}
	if !strings.Contains(err.Error(), "2 of 3 events sent") || !strings.Contains(err.Error(), "refused by the test") {
		t.Errorf("error %q does not say what was sent and why it failed", err)
	}
	if _, err := bus.PublishBatch(context.Background(), b, bus.Item(Event{Run: e.id}), bus.Item(nil)); err == nil || !strings.Contains(err.Error(), "nothing sent") {
		t.Errorf("a batch with a nil event = %v, want an error that says nothing was sent", err)
	}
}

func testCallerIDs(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	rec := newRecorder()
	mustSubscribe(t, b, e.group("ids"), func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)
	var assigned string
	if err := bus.Publish(context.Background(), b, Event{Run: e.id, Seq: 0}, bus.StoreID(&assigned)); err != nil {
		t.Fatal(err)
	}
	chosen := "order-" + e.id + "-42"
	var stored string
	if err := bus.Publish(context.Background(), b, Event{Run: e.id, Seq: 1}, bus.WithID(chosen), bus.StoreID(&stored)); err != nil {
		t.Fatal(err)
	}
	if assigned == "" || stored != chosen {
		t.Fatalf("StoreID gave %q and %q; want a new id and %q", assigned, stored, chosen)
	}
	for _, c := range rec.waitFor(e, "both events", atLeast(2)) {
		if want := map[int]string{0: assigned, 1: chosen}[c.Event.Seq]; c.Meta.ID != want || c.Meta.Raw.Get(bus.MetaID) != want {
			t.Errorf("event %d: id %q (ce_id %q), want %q", c.Event.Seq, c.Meta.ID, c.Meta.Raw.Get(bus.MetaID), want)
		}
	}
}
