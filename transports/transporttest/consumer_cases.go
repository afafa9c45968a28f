package transporttest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

// RunConsumer runs the cases of transports.Consumer, the direct delivery
// path the bus uses, when the transport's subscribers have it; it skips
// otherwise. The channel path is Watermill's universal suite.
func RunConsumer(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"SettlesEveryOutcome", testConsumerOutcomes},
		{"StopWaitsForHandler", testConsumerStop},
		{"StopKeepsAcks", testConsumerStopKeepsAcks},
	})
}

// consumer returns a Consumer of group from tr, closed at the end of the
// test, or skips the test if tr's subscribers are not Consumers.
func consumer(t *testing.T, tr transports.Transport, topic, group string) transports.Consumer {
	t.Helper()
	if p, ok := tr.(transports.GroupProvisioner); ok {
		if err := p.ProvisionGroup(context.Background(), topic, group); err != nil {
			t.Fatalf("provision %s: %v", topic, err)
		}
	}
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	c, ok := sub.(transports.Consumer)
	if !ok {
		t.Skipf("%T is not a transports.Consumer", sub)
	}
	return c
}

func publishN(t *testing.T, tr transports.Transport, topic string, n int) []string {
	t.Helper()
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	defer func() { _ = pub.Close() }()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("m%d", i)
		msg := message.NewMessage(ids[i], []byte(ids[i]))
		msg.Metadata.Set("seq", fmt.Sprint(i))
		if err := pub.Publish(topic, msg); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	return ids
}

// A message nacked, or neither acked nor nacked, comes back; an acked one
// does not; handle runs one message at a time per Consume call.
func testConsumerOutcomes(t *testing.T, h *Harness) {
	e := h.setup(t)
	tr, topic, group := e.tr, e.topic, e.group("consumer")
	c := consumer(t, tr, topic, group)
	// An ack before the failures, and acks after them: a transport that
	// batches acks must not let them cover the failed messages.
	ids := publishN(t, tr, topic, 5)

	var (
		mu      sync.Mutex
		calls   = map[string]int{}
		acked   = map[string]int{}
		running atomic.Int32
		overlap atomic.Bool
	)
	allAcked := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := c.Consume(ctx, topic, func(msg *message.Message) {
		if running.Add(1) > 1 {
			overlap.Store(true)
		}
		defer running.Add(-1)
		if msg.Context() == nil || msg.Metadata.Get("seq") == "" {
			t.Errorf("message %s: no context or metadata", msg.UUID)
		}
		mu.Lock()
		defer mu.Unlock()
		calls[msg.UUID]++
		switch {
		case msg.UUID == ids[1] && calls[msg.UUID] == 1:
			msg.Nack()
		case msg.UUID == ids[2] && calls[msg.UUID] == 1:
			// neither: must count as a nack
		default:
			msg.Ack()
			acked[msg.UUID]++
			if len(acked) == len(ids) {
				close(allAcked)
			}
		}
	})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	select {
	case <-allAcked:
	case <-time.After(h.Timeout):
		mu.Lock()
		t.Fatalf("not every message acked within %v: calls %v, acked %v", h.Timeout, calls, acked)
	}
	// Nothing acked may come back.
	time.Sleep(200 * time.Millisecond)
	cancel()
	waitClosed(t, h, done, "Consume's done after cancel")
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if acked[id] != 1 {
			t.Errorf("message %s acked %d times, want 1 (calls %d)", id, acked[id], calls[id])
		}
	}
	if calls[ids[1]] < 2 || calls[ids[2]] < 2 {
		t.Errorf("nacked message handled %d times, unsettled one %d times; want both redelivered", calls[ids[1]], calls[ids[2]])
	}
	if overlap.Load() {
		t.Error("handle ran for two messages at once in one Consume call")
	}
}

// Cancelling ctx stops the calls, but done waits for the handler in flight.
func testConsumerStop(t *testing.T, h *Harness) {
	e := h.setup(t)
	tr, topic, group := e.tr, e.topic, e.group("consumer")
	c := consumer(t, tr, topic, group)
	publishN(t, tr, topic, 2)

	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	var returned atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := c.Consume(ctx, topic, func(msg *message.Message) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
			returned.Store(true)
		}
		msg.Ack()
	})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	waitClosed(t, h, entered, "the first handle call")
	cancel()
	select {
	case <-done:
		t.Fatal("done closed while handle was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	waitClosed(t, h, done, "Consume's done after the handler returned")
	if !returned.Load() {
		t.Error("done closed before the handler in flight returned")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handle called %d times after ctx was cancelled during the first call, want 1", n)
	}
}

// Messages acked before a clean stop are not delivered again to the group:
// a transport that batches acks sends them before done is closed.
func testConsumerStopKeepsAcks(t *testing.T, h *Harness) {
	e := h.setup(t)
	tr, topic, group := e.tr, e.topic, e.group("consumer")
	c := consumer(t, tr, topic, group)
	const n = 5
	publishN(t, tr, topic, n)

	var handled atomic.Int32
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := c.Consume(ctx, topic, func(msg *message.Message) {
		msg.Ack()
		if handled.Add(1) == n {
			close(all)
		}
	})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	waitClosed(t, h, all, "every message handled")
	cancel()
	waitClosed(t, h, done, "Consume's done after cancel")

	again := consumer(t, tr, topic, group)
	var redelivered atomic.Int32
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2, err := again.Consume(ctx2, topic, func(msg *message.Message) {
		redelivered.Add(1)
		msg.Ack()
	})
	if err != nil {
		cancel2()
		t.Fatalf("second Consume: %v", err)
	}
	time.Sleep(time.Second) // long enough for a redelivery to show
	cancel2()
	waitClosed(t, h, done2, "the second Consume's done")
	if r := redelivered.Load(); r != 0 {
		t.Errorf("%d of %d messages acked before a clean stop were delivered again", r, n)
	}
}
