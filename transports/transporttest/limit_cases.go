package transporttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// RunLimits runs the cases of what a publish refuses: a message over the
// transport's size limit, and a context already done.
func RunLimits(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"OversizedRefusedBeforeSend", testOversized},
		{"PublishWithDoneContext", testPublishDoneContext},
		{"FailureNearTheLimitIsKept", testFailureNearLimit},
	})
}

// sizedMessage returns a message of the suite's Event with seq whose
// transports.MessageSize is exactly size (at least the size of its
// metadata and an empty key).
func (e *env) sizedMessage(seq, size int) *message.Message {
	id := fmt.Sprintf("sized-%s-%d", e.id, seq)
	msg := message.NewMessage(id, nil)
	msg.Metadata.Set(bus.MetaID, id)
	msg.Metadata.Set(bus.MetaType, Event{}.EventName())
	msg.Metadata.Set(bus.MetaSource, "conformance")
	msg.Metadata.Set(bus.MetaSpecVersion, "1.0")
	msg.Metadata.Set(bus.MetaContentType, "application/json")
	msg.Metadata.Set(bus.MetaPartitionKey, "sized")
	body := func(pad int) []byte {
		return []byte(`{"run":"` + e.id + `","seq":` + strconv.Itoa(seq) + `,"key":"` + strings.Repeat("x", pad) + `"}`)
	}
	msg.Payload = body(0)
	if pad := size - transports.MessageSize(msg); pad > 0 {
		msg.Payload = body(pad)
	}
	return msg
}

// recordingWithPublisher starts a running bus whose group name records every
// event it handles, and returns it with a plain publisher of the
// transport, closed at the end of the case.
func (e *env) recordingWithPublisher(name string) (*bus.Bus, *recorder, message.Publisher) {
	e.t.Helper()
	b := e.newBus(bus.Config{})
	rec := newRecorder()
	mustSubscribe(e.t, b, e.group(name), func(ctx context.Context, ev Event) error {
		rec.record(ctx, ev)
		return nil
	})
	e.run(b)
	pub, err := e.tr.Publisher()
	if err != nil {
		e.t.Fatalf("publisher: %v", err)
	}
	e.t.Cleanup(func() { _ = pub.Close() })
	return b, rec, pub
}

// testOversized checks that a message over Features().MaxMessageBytes is
// refused before anything is sent, with an error that names the size and
// the limit, without failing a publish running next to it, and that a
// message of exactly the limit is delivered (so the limit is one the broker
// really accepts). A harness should configure a modest limit (a few hundred
// KiB) so that the case stays fast.
func testOversized(t *testing.T, h *Harness) {
	e := h.setup(t)
	limit := e.tr.Features().MaxMessageBytes
	if limit <= 0 {
		t.Skip("the transport reports no message size limit (Features().MaxMessageBytes is 0)")
	}
	b, rec, pub := e.recordingWithPublisher("sized")

	checkTooLarge := func(what string, err error, size int) {
		t.Helper()
		var tl *transports.MessageTooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, transports.ErrTooLarge) {
			t.Errorf("%s = %v, want a *transports.MessageTooLargeError", what, err)
			return
		}
		if tl.Size != size || tl.Limit != limit {
			t.Errorf("%s: error says size %d limit %d, want %d and %d", what, tl.Size, tl.Limit, size, limit)
		}
		if errors.Is(err, transports.ErrMaybeSent) {
			t.Errorf("%s: %v says the message may have been sent; it must be refused before sending", what, err)
		}
		if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(size)) || !strings.Contains(msg, strconv.Itoa(limit)) {
			t.Errorf("%s: error %q does not name the size and the limit", what, msg)
		}
	}

	// An oversized publish next to a small one: the small one succeeds.
	overErr := make(chan error, 1)
	go func() { overErr <- pub.Publish(e.topic, e.sizedMessage(2, limit+1)) }()
	if err := pub.Publish(e.topic, e.sizedMessage(3, 200)); err != nil {
		t.Errorf("a small publish next to an oversized one failed: %v", err)
	}
	checkTooLarge("Publish of limit+1 bytes", <-overErr, limit+1)

	// A call with one oversized message sends none of them.
	checkTooLarge("Publish of a small and an oversized message", pub.Publish(e.topic, e.sizedMessage(4, 200), e.sizedMessage(5, 2*limit)), 2*limit)

	// Through the bus, the error is the transport's.
	if err := bus.Publish(context.Background(), b, Event{Run: e.id, Seq: 7, Key: strings.Repeat("x", limit)}); !errors.Is(err, transports.ErrTooLarge) {
		t.Errorf("bus.Publish of an oversized event = %v, want an error wrapping transports.ErrTooLarge", err)
	}

	if err := pub.Publish(e.topic, e.sizedMessage(1, limit)); err != nil {
		t.Fatalf("Publish of exactly the limit (%d bytes): %v", limit, err)
	}
	if err := pub.Publish(e.topic, e.sizedMessage(6, 200)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(e, "the small messages and the one at the limit", func(d []delivery) bool {
		seen := map[int]bool{}
		for _, c := range d {
			seen[c.Event.Seq] = true
		}
		return seen[1] && seen[3] && seen[6]
	})
	time.Sleep(settle)
	var got []int
	for _, c := range rec.snapshot() {
		got = append(got, c.Event.Seq)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 3, 6}) {
		t.Errorf("delivered %v, want [1 3 6]: an oversized message, or its neighbour in the call, was sent", got)
	}
}

// testPublishDoneContext checks that a publish whose context is already
// done returns at once with the context's error, sends nothing, and does
// not say the message may have been sent.
func testPublishDoneContext(t *testing.T, h *Harness) {
	e := h.setup(t)
	b, rec, pub := e.recordingWithPublisher("done")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg := e.sizedMessage(1, 0)
	msg.SetContext(ctx)
	start := time.Now()
	err := pub.Publish(e.topic, msg)
	if took := time.Since(start); took > h.Timeout/4 {
		t.Errorf("Publish with a done context took %v", took)
	}
	if !errors.Is(err, context.Canceled) || errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("Publish with a done context = %v, want context.Canceled, not ErrMaybeSent", err)
	}
	// bus.Publish hands its context to the transport.
	if err := bus.Publish(ctx, b, Event{Run: e.id, Seq: 3}); !errors.Is(err, context.Canceled) || errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("bus.Publish with a done context = %v, want context.Canceled, not ErrMaybeSent", err)
	}
	if err := pub.Publish(e.topic, e.sizedMessage(2, 0)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(e, "the message published after", atLeast(1))
	time.Sleep(settle)
	for _, c := range rec.snapshot() {
		if c.Event.Seq == 1 || c.Event.Seq == 3 {
			t.Errorf("message %d, published with a done context, was delivered", c.Event.Seq)
		}
	}
}

// settle is how long a case waits, after the messages it expects arrived,
// for one that should not have been sent to show up.
const settle = time.Second

// testFailureNearLimit checks that a failing message published by another
// client close to the transport's size limit is never lost: one with room
// for a short failure record reaches the poison lane with it (a lane write
// refused as too large is not retried as such), and one exactly at the
// limit, with room for none, stays on its topic and is redelivered.
func testFailureNearLimit(t *testing.T, h *Harness) {
	e := h.setup(t)
	limit := e.tr.Features().MaxMessageBytes
	if limit <= 0 {
		t.Skip("the transport reports no message size limit (Features().MaxMessageBytes is 0)")
	}
	b := e.newBus(bus.Config{})
	group := e.group("near")
	var mu sync.Mutex
	calls := map[int]int{}
	long := strings.Repeat("e", 2*wire.MaxErrorText) // a record that cannot fit next to the message
	err := bus.Subscribe(b, group, func(_ context.Context, ev Event) error {
		mu.Lock()
		calls[ev.Seq]++
		mu.Unlock()
		return errors.New("event " + strconv.Itoa(ev.Seq) + " fails: " + long)
	}, noRetry, bus.WithDelays(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	e.run(b)
	pub, err := e.tr.Publisher()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	defer pub.Close()
	if err := pub.Publish(e.topic, e.sizedMessage(1, limit-600)); err != nil {
		t.Fatal(err)
	}
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	poisoned := waitPoison(t, e, lane, 1)
	f := poisoned[0].Failure
	if f.Reason != wire.ReasonError || f.Group != group || f.Attempts < 1 || !strings.Contains(f.Error, "size limit") {
		t.Errorf("poison record %+v: want reason error, group %s, attempts, and an error text that says it was dropped for the size limit", f, group)
	}

	if err := pub.Publish(e.topic, e.sizedMessage(2, limit)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(h.Timeout)
	for {
		mu.Lock()
		n := calls[2]
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message at the limit was handled %d times, want it redelivered (at least 3 calls)", n)
		}
		time.Sleep(10 * time.Millisecond) // polling the handler's count
	}
	if list, err := lane.List(e.h.waitCtx(t)); err != nil || len(list) != 1 {
		t.Errorf("poison lane = %d messages (%v), want only the first", len(list), err)
	}
}
