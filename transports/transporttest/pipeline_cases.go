package transporttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// RunPipeline runs the failure-pipeline cases: retries, delayed redelivery,
// poison lane, replay and shutdown.
func RunPipeline(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"MixedFailures", testMixedFailures},
		{"DelayedLaneDoesNotBlock", testDelayedLaneDoesNotBlock},
		{"DelayLateness", testDelayLateness},
		{"ReplayOnlyToFailedGroup", testReplay},
		{"UndecodablePayloadPoisoned", testUndecodable},
		{"ShutdownIsNotAFailure", testShutdownNotFailure},
		{"OrderedBlocksThenPoisons", testOrdered},
		{"OrderedKeepsOrderWhenLaneWriteFails", testOrderedLaneWriteFails},
		{"PoisonCopiesActOnce", testPoisonCopies},
	})
}

// fastRetry retries at once, so the cases measure the lanes, not backoff.
var fastRetry = bus.WithRetry(middleware.RetryPolicy{Attempts: 3, Backoff: middleware.Backoff{Initial: time.Millisecond, Max: time.Millisecond}})

func testMixedFailures(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	group := e.group("mixed")
	const n = 1000
	const panicking = 5
	var (
		mu        sync.Mutex
		successes = map[int]int{}
		calls     = map[int]int{}
	)
	rec := newRecorder()
	handler := func(ctx context.Context, ev Event) error {
		mu.Lock()
		calls[ev.Seq]++
		call := calls[ev.Seq]
		mu.Unlock()
		switch {
		case ev.Seq == panicking:
			panic(fmt.Sprintf("event %d always panics", ev.Seq))
		case ev.Seq%10 == 0:
			return bus.Permanent(fmt.Errorf("event %d is invalid", ev.Seq))
		case ev.Seq%10 == 1 && call <= 2:
			return fmt.Errorf("event %d: transient failure %d", ev.Seq, call)
		}
		mu.Lock()
		successes[ev.Seq]++
		mu.Unlock()
		rec.record(ctx, ev)
		return nil
	}
	if err := bus.Subscribe(b, group, handler, fastRetry, bus.WithDelays(200*time.Millisecond), bus.WithConcurrency(4)); err != nil {
		t.Fatal(err)
	}
	e.run(b)
	e.publish(b, n, nil)

	const permanent = n / 10
	wantSuccess := n - permanent - 1
	rec.waitFor(e, fmt.Sprintf("%d successful events", wantSuccess), atLeast(wantSuccess))
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	poisoned := waitPoison(t, e, lane, permanent+1)

	mu.Lock()
	defer mu.Unlock()
	duplicates := 0
	for seq, c := range successes {
		duplicates += c - 1
		if seq%10 == 0 || seq == panicking {
			t.Errorf("event %d succeeded, but its handler never does", seq)
		}
	}
	if duplicates > h.MaxDuplicates {
		t.Errorf("%d duplicate successes, at most %d allowed for this transport", duplicates, h.MaxDuplicates)
	}
	for seq := 1; seq < n; seq += 10 {
		if calls[seq] != 3 || successes[seq] != 1 {
			t.Errorf("transient event %d: %d calls, %d successes; want 3 calls (2 failures), 1 success", seq, calls[seq], successes[seq])
		}
	}
	lost := 0
	inPoison := map[int]poisonCheck{}
	for _, pm := range poisoned {
		var ev Event
		if err := json.Unmarshal(pm.Payload, &ev); err != nil {
			t.Fatalf("poison payload %q: %v", pm.Payload, err)
		}
		want, _ := json.Marshal(Event{Run: e.id, Seq: ev.Seq})
		if !bytes.Equal(pm.Payload, want) {
			t.Errorf("poison payload %s, want the original bytes %s", pm.Payload, want)
		}
		inPoison[ev.Seq] = poisonCheck{pm}
	}
	for seq := range n {
		_, ok := inPoison[seq]
		if successes[seq] == 0 && !ok {
			lost++
		}
	}
	if lost != 0 {
		t.Errorf("%d events lost: neither handled nor in the poison lane", lost)
	}
	for seq, pc := range inPoison {
		f := pc.Failure
		wantReason, wantAttempts, wantType := wire.ReasonPermanent, 1, "*errors.errorString"
		if seq == panicking {
			wantReason, wantAttempts, wantType = wire.ReasonPanic, 6, "*middleware.PanicError"
		} else if seq%10 != 0 {
			t.Errorf("event %d in the poison lane, but it should have succeeded", seq)
			continue
		}
		if pc.FailureErr != nil {
			t.Errorf("event %d: malformed failure record: %v", seq, pc.FailureErr)
		}
		if f.Reason != wantReason || f.Attempts != wantAttempts || f.ErrorType != wantType {
			t.Errorf("event %d: reason %q attempts %d type %q; want %q, %d, %q", seq, f.Reason, f.Attempts, f.ErrorType, wantReason, wantAttempts, wantType)
		}
		if f.Group != group || f.Topic != e.topic || f.Error == "" || f.Handler == "" {
			t.Errorf("event %d: group %q topic %q error %q handler %q; want %q, %q, the error text and the handler", seq, f.Group, f.Topic, f.Error, f.Handler, group, e.topic)
		}
		if f.FirstFailure.IsZero() || f.LastFailure.Before(f.FirstFailure) {
			t.Errorf("event %d: first failure %v, last %v", seq, f.FirstFailure, f.LastFailure)
		}
		if pc.Metadata.Get(bus.MetaType) != (Event{}).EventName() || pc.Metadata.Get(bus.MetaSource) != "conformance" {
			t.Errorf("event %d: original metadata lost: %v", seq, pc.Metadata)
		}
	}
	t.Logf("%d events: %d handled once, %d duplicates, %d poisoned, %d lost", n, len(successes), duplicates, len(poisoned), lost)
}

// poisonCheck is a poison message under check.
type poisonCheck struct{ bus.PoisonMessage }

// waitPoison lists the lane until it holds want messages, and returns them.
func waitPoison(t *testing.T, e *env, lane *bus.PoisonLane, want int) []bus.PoisonMessage {
	t.Helper()
	deadline := time.Now().Add(e.h.Timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), e.h.Timeout)
		list, err := lane.List(ctx)
		cancel()
		if err != nil {
			t.Fatalf("list poison lane: %v", err)
		}
		if len(list) >= want || time.Now().After(deadline) {
			if len(list) != want {
				t.Fatalf("poison lane holds %d messages, want %d", len(list), want)
			}
			return list
		}
		time.Sleep(100 * time.Millisecond) // polling a broker-side lane; no event to wait on
	}
}

func testDelayedLaneDoesNotBlock(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	const delay = 3 * time.Second
	const n = 50
	rec := newRecorder()
	var failedAt atomic.Int64
	handler := func(ctx context.Context, ev Event) error {
		if ev.Seq == 0 && failedAt.Load() == 0 {
			failedAt.Store(time.Now().UnixNano())
			return errors.New("first delivery of event 0 fails")
		}
		rec.record(ctx, ev)
		return nil
	}
	if err := bus.Subscribe(b, e.group("nonblocking"), handler, bus.WithRetry(middleware.RetryPolicy{Attempts: 1}), bus.WithDelays(delay)); err != nil {
		t.Fatal(err)
	}
	e.run(b)
	e.publish(b, n, nil)
	calls := rec.waitFor(e, "every event, event 0 after its delay", atLeast(n))
	failed := time.Unix(0, failedAt.Load())
	var zeroAt, lastOther time.Time
	for _, c := range calls {
		if c.Event.Seq == 0 {
			zeroAt = c.At
		} else if c.At.After(lastOther) {
			lastOther = c.At
		}
	}
	if lastOther.Sub(failed) >= delay {
		t.Errorf("events behind the failed one were handled %v after its failure: the %v delay blocked them", lastOther.Sub(failed), delay)
	}
	if zeroAt.Sub(failed) < delay {
		t.Errorf("event 0 handled %v after its failure, before its %v delay", zeroAt.Sub(failed), delay)
	}
	t.Logf("other events done %v after the failure; event 0 redelivered after %v", lastOther.Sub(failed), zeroAt.Sub(failed))
}

func testDelayLateness(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	const delay = time.Second
	rec := newRecorder()
	var failedAt atomic.Int64
	handler := func(ctx context.Context, ev Event) error {
		if failedAt.Load() == 0 {
			failedAt.Store(time.Now().UnixNano())
			return errors.New("fails once")
		}
		rec.record(ctx, ev)
		return nil
	}
	if err := bus.Subscribe(b, e.group("late"), handler, bus.WithRetry(middleware.RetryPolicy{Attempts: 1}), bus.WithDelays(delay)); err != nil {
		t.Fatal(err)
	}
	e.run(b)
	e.publish(b, 1, nil)
	calls := rec.waitFor(e, "the redelivery", atLeast(1))
	after := calls[0].At.Sub(time.Unix(0, failedAt.Load()))
	if after < delay || after > delay+h.MaxLateness {
		t.Errorf("redelivered %v after the failure, want between %v and %v", after, delay, delay+h.MaxLateness)
	}
	if md := calls[0].Meta; md.Attempt != 2 || md.Raw.Get(wire.MetaTier) != "1" {
		t.Errorf("redelivery attempt %d tier %q, want attempt 2 from tier 1", md.Attempt, md.Raw.Get(wire.MetaTier))
	}
	t.Logf("tier %v: handled %v after the failure (lateness %v)", delay, after, after-delay)
}

func testReplay(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	failing, other := e.group("failing"), e.group("other")
	var broken atomic.Bool
	broken.Store(true)
	fixed, others := newRecorder(), newRecorder()
	mustSubscribeOpts(t, b, failing, func(ctx context.Context, ev Event) error {
		if broken.Load() {
			return bus.Permanent(errors.New("bug"))
		}
		fixed.record(ctx, ev)
		return nil
	})
	mustSubscribeOpts(t, b, other, func(ctx context.Context, ev Event) error {
		others.record(ctx, ev)
		return nil
	})
	e.run(b)
	const n = 5
	e.publish(b, n, nil)
	others.waitFor(e, "the other group's events", atLeast(n))
	lane, err := bus.NewPoisonLane(e.tr, e.topic, failing)
	if err != nil {
		t.Fatal(err)
	}
	waitPoison(t, e, lane, n)

	broken.Store(false)
	replayed, err := lane.Replay(e.h.waitCtx(t), nil)
	if err != nil || replayed != n {
		t.Fatalf("Replay = %d, %v; want %d, nil", replayed, err, n)
	}
	calls := fixed.waitFor(e, "the replayed events", atLeast(n))
	for _, c := range calls {
		if c.Meta.Raw.Get(wire.MetaReplays) != "1" {
			t.Errorf("replayed event %d has %s=%q, want 1", c.Event.Seq, wire.MetaReplays, c.Meta.Raw.Get(wire.MetaReplays))
		}
	}
	// The other group had handled each event once and sees no replay: publish
	// a marker through the main topic; once it arrives, anything replayed to
	// the other group would have arrived before it.
	e.publish(b, 1, func(int) string { return "marker" })
	otherCalls := others.waitFor(e, "the marker", func(c []delivery) bool { return len(c) > n })
	if len(otherCalls) != n+1 {
		t.Errorf("the other group handled %d events, want %d and the marker: it saw the replay", len(otherCalls)-1, n)
	}
	if left, err := lane.List(e.h.waitCtx(t)); err != nil || len(left) != 0 {
		t.Errorf("poison lane after replay: %d messages, %v; want empty", len(left), err)
	}
}

func testUndecodable(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	group := e.group("strict")
	var calls atomic.Int64
	rec := newRecorder()
	mustSubscribeOpts(t, b, group, func(ctx context.Context, ev Event) error {
		calls.Add(1)
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)
	pub, err := e.tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(e.topic, message.NewMessage("garbage-1", []byte("\x00not json{"))); err != nil {
		t.Fatal(err)
	}
	e.publish(b, 1, nil)
	rec.waitFor(e, "the good event after the bad one", atLeast(1))
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	list := waitPoison(t, e, lane, 1)
	if got := calls.Load(); got != 1 {
		t.Errorf("handler called %d times, want 1 (the good event only)", got)
	}
	if f := list[0].Failure; f.Reason != wire.ReasonDecode || f.Attempts != 1 {
		t.Errorf("poisoned with reason %q after %d attempts, want %q after 1", f.Reason, f.Attempts, wire.ReasonDecode)
	}
	if !bytes.Equal(list[0].Payload, []byte("\x00not json{")) {
		t.Errorf("poison payload %q, want the original bytes", list[0].Payload)
	}
}

func testShutdownNotFailure(t *testing.T, h *Harness) {
	e := h.setup(t)
	group := e.group("busy")
	const n = 50
	b := e.newBus(bus.Config{ShutdownGrace: 300 * time.Millisecond})
	var started sync.WaitGroup
	started.Add(n)
	mustSubscribeOpts(t, b, group, func(ctx context.Context, ev Event) error {
		started.Done()
		<-ctx.Done()
		return ctx.Err()
	}, bus.WithConcurrency(n))
	e.run(b)
	e.publish(b, n, nil)
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	waitClosed(t, h, allStarted, fmt.Sprintf("%d handlers in flight", n))
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := lane.List(e.h.waitCtx(t)); err != nil || len(list) != 0 {
		t.Fatalf("poison lane after shutdown: %d messages, %v; want none", len(list), err)
	}
	_, rec := e.recordingInstance(group, bus.WithConcurrency(4))
	calls := rec.waitFor(e, "the 50 interrupted events", atLeast(n))
	for _, c := range calls {
		if tier := c.Meta.Raw.Get(wire.MetaTier); tier != "" || c.Meta.Attempt != 1 {
			t.Errorf("event %d came back from tier %q at attempt %d: shutdown counted as a failure", c.Event.Seq, tier, c.Meta.Attempt)
		}
	}
}

func testOrdered(t *testing.T, h *Harness) {
	e := h.setup(t)
	if !e.tr.Features().OrderedPerKey {
		t.Skip("transport does not keep per-key order")
	}
	b := e.newBus(bus.Config{})
	group := e.group("ordered")
	rec := newRecorder()
	mustSubscribeOpts(t, b, group, func(ctx context.Context, ev Event) error {
		if ev.Seq == 3 {
			return errors.New("event 3 always fails")
		}
		rec.record(ctx, ev)
		return nil
	}, bus.WithOrdered(), fastRetry)
	e.run(b)
	const n = 10
	e.publish(b, n, func(int) string { return "one-key" })
	calls := rec.waitFor(e, "the events around the failing one", atLeast(n-1))
	for i, c := range calls {
		want := i
		if i >= 3 {
			want = i + 1
		}
		if c.Event.Seq != want {
			t.Fatalf("call %d handled event %d, want %d: order broken", i, c.Event.Seq, want)
		}
	}
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	if list := waitPoison(t, e, lane, 1); list[0].Failure.Attempts != 3 {
		t.Errorf("ordered failure poisoned after %d attempts, want 3", list[0].Failure.Attempts)
	}
}

func mustSubscribeOpts(t *testing.T, b *bus.Bus, group string, h bus.Handler[Event], opts ...bus.SubscribeOption) {
	t.Helper()
	if err := bus.Subscribe(b, group, h, opts...); err != nil {
		t.Fatalf("Subscribe %s: %v", group, err)
	}
}

// failingLanes wraps a transport so that the first n publishes to a poison
// lane fail, as a broker refusing writes would.
type failingLanes struct {
	transports.Transport
	left *atomic.Int64
}

// provisioningFailingLanes is failingLanes over a transport that provisions
// groups, which the bus must still see.
type provisioningFailingLanes struct {
	failingLanes
	transports.GroupProvisioner
}

func withFailingLanes(tr transports.Transport, n int) transports.Transport {
	left := &atomic.Int64{}
	left.Store(int64(n))
	f := failingLanes{Transport: tr, left: left}
	if p, ok := tr.(transports.GroupProvisioner); ok {
		return provisioningFailingLanes{failingLanes: f, GroupProvisioner: p}
	}
	return f
}

func (f failingLanes) Publisher() (message.Publisher, error) {
	p, err := f.Transport.Publisher()
	return failingPublisher{Publisher: p, left: f.left}, err
}

type failingPublisher struct {
	message.Publisher
	left *atomic.Int64
}

func (p failingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if strings.HasSuffix(topic, ".poison") && p.left.Add(-1) >= 0 {
		return errors.New("lane write refused by the test")
	}
	return p.Publisher.Publish(topic, msgs...)
}

func testOrderedLaneWriteFails(t *testing.T, h *Harness) {
	e := h.setup(t)
	if !e.tr.Features().OrderedPerKey {
		t.Skip("transport does not keep per-key order")
	}
	const refused = 3
	b := e.newBusOn(withFailingLanes(e.tr, refused), bus.Config{})
	group := e.group("ordered-refused")
	var mu sync.Mutex
	var order []int
	rec := newRecorder()
	mustSubscribeOpts(t, b, group, func(ctx context.Context, ev Event) error {
		mu.Lock()
		order = append(order, ev.Seq)
		mu.Unlock()
		if ev.Seq == 3 {
			return errors.New("event 3 always fails")
		}
		rec.record(ctx, ev)
		return nil
	}, bus.WithOrdered(), fastRetry)
	e.run(b)
	const n = 10
	e.publish(e.newBus(bus.Config{}), n, func(int) string { return "one-key" })
	rec.waitFor(e, "the events around the failing one", atLeast(n-1))
	mu.Lock()
	if !slices.IsSorted(order) {
		t.Errorf("handler calls in order %v: a message overtook the failing one while its poison write was refused", order)
	}
	if calls := len(order) - n + 1; calls != 3 {
		t.Errorf("event 3 handled %d times, want 3: a refused poison write must be retried, not the handler (calls %v)", calls, order)
	}
	mu.Unlock()
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	list := waitPoison(t, e, lane, 1)
	if len(list) != 1 || list[0].Failure.Attempts != 3 {
		t.Errorf("poison lane holds %d messages, the first after %d attempts; want event 3 once, after 3 attempts (the refused writes retried, not the handler)", len(list), list[0].Failure.Attempts)
	}
}

func testPoisonCopies(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	group := e.group("copies")
	rec := newRecorder()
	mustSubscribeOpts(t, b, group, func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	pub, err := e.tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	poisoned := func(seq int, id string) *message.Message {
		m := laneMessage(e, seq, time.Time{})
		m.UUID = uuid.NewString() // another copy on the wire, the same event
		m.Metadata.Set(bus.MetaID, id)
		wire.Failure{Attempts: 3, Reason: wire.ReasonError, Error: "crashed before the ack"}.Write(m.Metadata)
		return m
	}
	dup := e.id + "-dup"
	// A crash between the poison write and the ack wrote the first event twice.
	if err := pub.Publish(wire.PoisonTopic(e.topic, group), poisoned(0, dup), poisoned(1, e.id+"-solo"), poisoned(0, dup)); err != nil {
		t.Fatal(err)
	}
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	list, err := lane.List(e.h.waitCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != dup || list[0].Copies != 2 || list[1].Copies != 1 {
		t.Fatalf("List = %s, want %s with 2 copies, then the other once", describe(list), dup)
	}
	e.run(b)
	n, err := lane.Replay(e.h.waitCtx(t), func(m bus.PoisonMessage) bool { return m.ID == dup })
	if err != nil || n != 1 {
		t.Fatalf("Replay by id = %d, %v; want 1 message", n, err)
	}
	rec.waitFor(e, "the replayed event", atLeast(1))
	// Once a marker published after the replay arrived, a second copy would have.
	e.publish(e.newBus(bus.Config{}), 2, nil)
	calls := rec.waitFor(e, "the markers", func(c []delivery) bool { return len(c) >= 3 })
	if len(calls) != 3 {
		t.Errorf("%d handler calls, want the replayed event once and two markers", len(calls))
	}
	if left, err := lane.List(e.h.waitCtx(t)); err != nil || len(left) != 1 || left[0].ID != e.id+"-solo" {
		t.Errorf("lane after the replay: %s, %v; want the other message only", describe(left), err)
	}
}

// describe lists poison messages as "id×copies".
func describe(list []bus.PoisonMessage) string {
	var parts []string
	for _, m := range list {
		parts = append(parts, fmt.Sprintf("%s×%d", m.ID, m.Copies))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
