package transporttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// RunDelay runs the delayed-redelivery and scheduled-publish cases: a
// waiting message holds no consumer, so Close and rebalances never wait for
// it, a far-future due time blocks nothing, tiers removed from the
// configuration still drain, and scheduled publishes arrive on time.
func RunDelay(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"FeaturesMatchDelayer", testFeaturesMatchDelayer},
		{"CloseDoesNotWaitForDelayed", testCloseWithWaiting},
		{"LatenessAtScale", testDelayAtScale},
		{"FarFutureDueBlocksNothing", testSkew},
		{"OrphanedTierDrains", testOrphanedTier},
		{"ScheduledPublish", testScheduledPublish},
	})
}

func testFeaturesMatchDelayer(t *testing.T, h *Harness) {
	tr := h.open(t)
	_, ok := tr.(transports.Delayer)
	if f := tr.Features(); f.NativeDelay != ok {
		t.Errorf("Features().NativeDelay = %v, but the transport %s a transports.Delayer", f.NativeDelay, map[bool]string{true: "is", false: "is not"}[ok])
	}
}

// failOnce fails each event's first delivery and records every later one.
type failOnce struct {
	mu       sync.Mutex
	failedAt map[int]time.Time
	rec      *recorder
}

func newFailOnce() *failOnce { return &failOnce{failedAt: map[int]time.Time{}, rec: newRecorder()} }

func (f *failOnce) handle(ctx context.Context, ev Event) error {
	f.mu.Lock()
	_, failed := f.failedAt[ev.Seq]
	if !failed {
		f.failedAt[ev.Seq] = time.Now()
	}
	f.mu.Unlock()
	if !failed {
		return fmt.Errorf("event %d: first delivery fails", ev.Seq)
	}
	f.rec.record(ctx, ev)
	return nil
}

func (f *failOnce) failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.failedAt)
}

var noRetry = bus.WithRetry(middleware.RetryPolicy{Attempts: 1})

func testCloseWithWaiting(t *testing.T, h *Harness) {
	e := h.setup(t)
	const tier = time.Minute
	const grace = 30 * time.Second
	group := e.group("closing")
	b := e.newBus(bus.Config{ShutdownGrace: grace})
	f := newFailOnce()
	mustSubscribeOpts(t, b, group, f.handle, noRetry, bus.WithDelays(tier))
	e.run(b)
	e.publish(b, 1, nil)
	waitUntil(t, h.Timeout, "the first delivery to fail", func() bool { return f.failures() == 1 })
	// Close waits for the failed delivery's lane write, which is part of its
	// handling, then for nothing else: the message waits on the broker.
	start := time.Now()
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	took := time.Since(start)
	t.Logf("Close with a message waiting in a %v tier took %v (grace %v)", tier, took, grace)
	if took >= grace/2 {
		t.Errorf("Close took %v with a %v grace: it waited on the delayed message", took, grace)
	}
	f.mu.Lock()
	failed := f.failedAt[0]
	f.mu.Unlock()
	_, rec := e.recordingInstance(group, bus.WithDelays(tier))
	long := *h
	long.Timeout = tier + h.Timeout
	calls := rec.waitFor(&env{t: t, h: &long}, "the delayed message in the next instance", atLeast(1))
	if after := calls[0].At.Sub(failed); after < tier {
		t.Errorf("handled %v after its failure, before its %v delay", after, tier)
	}
	// Once a marker published after it arrived, a second copy would have.
	if err := bus.Publish(context.Background(), e.newBus(bus.Config{}), Event{Run: e.id, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	calls = rec.waitFor(e, "the marker", atLeast(2))
	if len(calls) != 2 {
		t.Errorf("%d handler calls, want the delayed message once and the marker", len(calls))
	}
}

func testDelayAtScale(t *testing.T, h *Harness) {
	e := h.setup(t)
	const (
		n      = 10000
		tier   = 2 * time.Second
		spread = 10 * time.Second
		batch  = 100
	)
	group := e.group("scale")
	b := e.newBus(bus.Config{})
	f := newFailOnce()
	var inFlight, maxInFlight int
	var mu sync.Mutex
	track := func(ctx context.Context, ev Event) error {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		return f.handle(ctx, ev)
	}
	mustSubscribeOpts(t, b, group, track, noRetry, bus.WithDelays(tier), bus.WithConcurrency(4))
	e.run(b)
	pub := e.newBus(bus.Config{})
	var before int
	tick := time.NewTicker(spread / (n / batch))
	defer tick.Stop()
	var peakGoroutines int
	for i := 0; i < n; i += batch {
		<-tick.C
		items := make([]bus.BatchItem, 0, batch)
		for j := i; j < i+batch; j++ {
			items = append(items, bus.Item(Event{Run: e.id, Seq: j}))
		}
		if _, err := bus.PublishBatch(context.Background(), pub, items...); err != nil {
			t.Fatalf("publish %d..%d: %v", i, i+batch-1, err)
		}
		if i == 0 {
			// The baseline, once the first batch failed into the lane: every
			// connection and consumer of the case is up by then.
			waitUntil(t, h.Timeout, "the first batch to fail", func() bool { return f.failures() >= batch })
			before = runtime.NumGoroutine()
		}
		peakGoroutines = max(peakGoroutines, runtime.NumGoroutine())
	}
	waiting := f.failures() - len(f.rec.snapshot())
	t.Logf("after publishing: %d failed, %d waiting; goroutines %d before, at most %d while they waited", f.failures(), waiting, before, peakGoroutines)
	// A goroutine per waiting message would show as thousands; the cases
	// that run beside this one (an in-process broker's connections) add a
	// few hundred at most.
	if extra := peakGoroutines - before; extra > n/10 {
		t.Errorf("%d more goroutines while messages waited in the lane: something holds waiting messages", extra)
	}
	long := *h
	long.Timeout = h.Timeout + tier
	calls := f.rec.waitProgress(&env{t: t, h: &long}, fmt.Sprintf("%d redeliveries", n), atLeast(n))
	late := make([]time.Duration, 0, n)
	f.mu.Lock()
	for _, c := range calls {
		after := c.At.Sub(f.failedAt[c.Event.Seq])
		if after < tier {
			t.Errorf("event %d redelivered %v after its failure, before its %v delay", c.Event.Seq, after, tier)
		}
		late = append(late, after-tier)
	}
	f.mu.Unlock()
	slices.Sort(late)
	q := func(p float64) time.Duration { return late[int(p*float64(len(late)-1))] }
	t.Logf("lateness past the %v tier over %d redeliveries: p50 %v, p90 %v, p99 %v, max %v; at most %d handlers in flight",
		tier, len(late), q(0.5), q(0.9), q(0.99), late[len(late)-1], maxInFlight)
	if worst := late[len(late)-1]; worst > scaleLateness(h) {
		t.Errorf("worst lateness %v, want at most %v", worst, scaleLateness(h))
	}
	// Four workers on each of the two topics: a waiting message takes none.
	if maxInFlight > 8 {
		t.Errorf("%d handlers in flight at once, with 4 workers per topic", maxInFlight)
	}
	if len(calls) != n {
		t.Errorf("%d redeliveries of %d events: %d duplicates", len(calls), n, len(calls)-n)
	}
}

// laneMessage returns a message as a retry lane holds it, with a failure
// record for tier 1 due at due.
func laneMessage(e *env, seq int, due time.Time) *message.Message {
	payload, _ := json.Marshal(Event{Run: e.id, Seq: seq})
	m := message.NewMessage(fmt.Sprintf("%s-lane-%d", e.id, seq), payload)
	m.Metadata.Set(bus.MetaID, m.UUID)
	m.Metadata.Set(bus.MetaType, Event{}.EventName())
	m.Metadata.Set(bus.MetaContentType, "application/json")
	wire.Failure{Attempts: 1, Tier: 1, Due: due, Reason: wire.ReasonError, Error: "edited"}.Write(m.Metadata)
	return m
}

func testSkew(t *testing.T, h *Harness) {
	e := h.setup(t)
	const tier = time.Second
	group := e.group("skew")
	b := e.newBus(bus.Config{})
	rec := newRecorder()
	mustSubscribeOpts(t, b, group, func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	}, bus.WithDelays(tier))
	pub, err := e.tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	lane := wire.RetryTopic(e.topic, group)
	// A clock an hour ahead wrote the first; the second is due now.
	if err := pub.Publish(lane, laneMessage(e, 0, time.Now().Add(time.Hour)), laneMessage(e, 1, time.Now())); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.run(b)
	calls := rec.waitFor(e, "both lane messages", atLeast(2))
	for _, c := range calls {
		if took := c.At.Sub(start); took > tier+h.MaxLateness {
			t.Errorf("event %d handled %v after the start, past its %v tier: a far-future due time held the lane", c.Event.Seq, took, tier)
		}
	}
}

func testOrphanedTier(t *testing.T, h *Harness) {
	e := h.setup(t)
	const short, long = 100 * time.Millisecond, 3 * time.Second
	fewer, ordered := e.group("fewer"), e.group("ordered")
	first := e.newBus(bus.Config{})
	var mu sync.Mutex
	failures := map[string]int{}
	for _, g := range []string{fewer, ordered} {
		mustSubscribeOpts(t, first, g, func(ctx context.Context, ev Event) error {
			mu.Lock()
			failures[g]++
			mu.Unlock()
			return errors.New("fails in the first deployment")
		}, noRetry, bus.WithDelays(short, long))
	}
	e.run(first)
	e.publish(first, 1, nil)
	// The second failure moved the message to tier 2, which the next
	// deployment no longer has.
	waitUntil(t, h.Timeout, "two failures in each group", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failures[fewer] >= 2 && failures[ordered] >= 2
	})
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, recFewer := e.recordingInstance(fewer, bus.WithDelays(short))
	_, recOrdered := e.recordingInstance(ordered, bus.WithOrdered())
	wait := *h
	wait.Timeout = h.Timeout + long
	for name, rec := range map[string]*recorder{"delays shortened": recFewer, "switched to ordered": recOrdered} {
		calls := rec.waitFor(&env{t: t, h: &wait}, "the message of a removed tier ("+name+")", atLeast(1))
		if tier := calls[0].Meta.Raw.Get(wire.MetaTier); tier != "2" {
			t.Errorf("%s: handled from tier %q, want 2", name, tier)
		}
	}
}

func testScheduledPublish(t *testing.T, h *Harness) {
	e := h.setup(t)
	b := e.newBus(bus.Config{})
	if !e.tr.Features().NativeDelay {
		err := bus.Publish(context.Background(), b, Event{Run: e.id}, bus.WithDelay(time.Second))
		if !errors.Is(err, bus.ErrDelayUnsupported) {
			t.Fatalf("scheduled publish on a transport without NativeDelay = %v, want ErrDelayUnsupported", err)
		}
		t.Skip("transport cannot delay on the broker")
	}
	const n = 1000
	const spread = 3 * time.Second
	recs := map[string]*recorder{}
	for _, g := range []string{e.group("a"), e.group("b")} {
		rec := newRecorder()
		recs[g] = rec
		mustSubscribeOpts(t, b, g, func(ctx context.Context, ev Event) error {
			rec.record(ctx, ev)
			return nil
		})
	}
	e.run(b)
	due := make([]time.Time, n)
	for i := range n {
		d := time.Duration(i) * spread / n
		due[i] = time.Now().Add(d)
		if err := bus.Publish(context.Background(), b, Event{Run: e.id, Seq: i}, bus.WithDelay(d)); err != nil {
			t.Fatalf("publish %d with delay %v: %v", i, d, err)
		}
	}
	wait := *h
	wait.Timeout = h.Timeout + spread
	for g, rec := range recs {
		calls := rec.waitFor(&env{t: t, h: &wait}, fmt.Sprintf("%d scheduled events in group %s", n, g), atLeast(n))
		var worst time.Duration
		for _, c := range calls {
			late := c.At.Sub(due[c.Event.Seq])
			if late < 0 {
				t.Errorf("group %s: event %d delivered %v before its due time", g, c.Event.Seq, -late)
			}
			worst = max(worst, late)
		}
		t.Logf("group %s: %d scheduled events, worst lateness %v", g, len(calls), worst)
		if worst > scaleLateness(h) {
			t.Errorf("group %s: worst lateness %v, want at most %v", g, worst, scaleLateness(h))
		}
		if len(calls) != n {
			t.Errorf("group %s: %d deliveries of %d events", g, len(calls), n)
		}
	}
}

// scaleLateness bounds the lateness of the cases that deliver thousands of
// due messages at once: past the transport's own lateness (MaxLateness),
// what the case measures there is how fast the consumer works through them,
// which a loaded machine slows down. The distribution is logged; the bound
// only catches messages held far past their time.
func scaleLateness(h *Harness) time.Duration { return max(30*h.MaxLateness, 30*time.Second) }

// waitUntil polls cond until it holds, or fails the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling a handler's state
	}
}
