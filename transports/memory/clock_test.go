package memory_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/bustest"
	"github.com/busline/busline/transports/memory"
)

// TestFakeClock drives the timer heap with a fake clock: nothing is due
// before the clock reaches a message's due time, Advance leaves every due
// message in its queue by the time it returns, in due-time then publish
// order, and Close disarms the timer.
func TestFakeClock(t *testing.T) {
	t.Parallel()
	clock := bustest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr := memory.New(memory.Config{Clock: clock})
	ctx := context.Background()
	const topic, group = "clock.topic", "clock-group"
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	publish := func(id string, delay time.Duration) {
		t.Helper()
		if err := tr.PublishDelayed(ctx, topic, delay, message.NewMessage(id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	publish("late", 20*time.Second)
	publish("first", 10*time.Second)
	publish("second", 10*time.Second)
	if got := clock.Pending(); got != 1 {
		t.Fatalf("clock has %d timers armed, want 1 for the heap", got)
	}

	clock.Advance(10*time.Second - time.Nanosecond)
	if n := tr.Pending(topic, group); n != 0 {
		t.Fatalf("%d messages in the queue 1ns before the first due time, want 0", n)
	}
	clock.Advance(time.Nanosecond)
	if n, w := tr.Pending(topic, group), tr.Waiting(); n != 2 || w != 1 {
		t.Fatalf("at 10s: %d queued and %d waiting, want 2 and 1", n, w)
	}
	clock.Advance(time.Hour)
	if n, w := tr.Pending(topic, group), tr.Waiting(); n != 3 || w != 0 {
		t.Fatalf("after 1h: %d queued and %d waiting, want 3 and 0", n, w)
	}
	if got := clock.Pending(); got != 0 {
		t.Fatalf("clock has %d timers armed with nothing waiting, want 0", got)
	}

	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := sub.Subscribe(subCtx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for range 3 {
		select {
		case m := <-msgs:
			order = append(order, m.UUID)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("waited 10s for 3 messages, got %v", order)
		}
	}
	if want := []string{"first", "second", "late"}; !slices.Equal(order, want) {
		t.Fatalf("delivered %v, want %v", order, want)
	}

	publish("dropped", time.Minute)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if got := clock.Pending(); got != 0 {
		t.Fatalf("clock has %d timers armed after Close, want 0", got)
	}
	clock.Advance(time.Hour) // nothing fires into the closed transport
	if w := tr.Waiting(); w != 0 {
		t.Fatalf("%d publishes waiting after Close, want 0", w)
	}
}

// TestEarlierDueRearms checks that a publish due before the heap's head
// re-arms the timer for itself.
func TestEarlierDueRearms(t *testing.T) {
	t.Parallel()
	clock := bustest.NewClock(time.Unix(0, 0))
	tr := memory.New(memory.Config{Clock: clock})
	defer tr.Close()
	ctx := context.Background()
	if err := tr.ProvisionGroup(ctx, "rearm", "g"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{time.Hour, time.Second} {
		if err := tr.PublishDelayed(ctx, "rearm", d, message.NewMessage(d.String(), nil)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	if n, w, armed := tr.Pending("rearm", "g"), tr.Waiting(), clock.Pending(); n != 1 || w != 1 || armed != 1 {
		t.Fatalf("after 1s: %d queued, %d waiting, %d timers armed; want 1, 1, 1", n, w, armed)
	}
}
