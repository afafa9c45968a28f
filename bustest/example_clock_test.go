package bustest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/bustest"
	"github.com/busline/busline/middleware"
)

// A handler fails once: the message moves to the group's 10s tier, and is
// handled again as soon as the fake clock is advanced past it. Nothing
// sleeps.
func ExampleClock() {
	t := newExampleT()
	defer t.finish()
	clock := bustest.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	h := bustest.New(t, bustest.WithClock(clock), bustest.WithConfig(bus.Config{
		Retry:  middleware.RetryPolicy{Attempts: 1}, // no immediate retry: straight to the first tier
		Delays: []time.Duration{10 * time.Second, time.Minute},
	}))

	failed := false
	err := bus.Subscribe(h.Bus(), "billing", func(ctx context.Context, e OrderPlaced) error {
		if !failed {
			failed = true
			return errors.New("payment provider unavailable")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := bus.Publish(context.Background(), h.Bus(), OrderPlaced{OrderID: "A-1"}); err != nil {
		t.Fatalf("publish: %v", err)
	}

	moved := bustest.WaitRetrying[OrderPlaced](t, h, "billing", 1)[0]
	fmt.Printf("tier %d after %q; waiting in the transport: %d\n", moved.Failure.Tier, moved.Failure.Error, h.Transport().Waiting())

	clock.Advance(10 * time.Second)
	handled := bustest.WaitHandled[OrderPlaced](t, h, "billing", 1)[0]
	fmt.Println("handled", handled.Event.OrderID, "at attempt", handled.Metadata.Attempt, "at", clock.Now().Format(time.TimeOnly))
	// Output:
	// tier 1 after "payment provider unavailable"; waiting in the transport: 1
	// handled A-1 at attempt 2 at 09:00:10
}

// A scheduled publish waits in the transport until the clock reaches it.
func ExampleHarness_Advance() {
	t := newExampleT()
	defer t.finish()
	h := bustest.New(t, bustest.WithClock(bustest.NewClock(time.Unix(0, 0))))

	err := bus.Subscribe(h.Bus(), "reminders", func(ctx context.Context, e OrderPlaced) error { return nil })
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := bus.Publish(context.Background(), h.Bus(), OrderPlaced{OrderID: "A-1"}, bus.WithDelay(24*time.Hour)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	fmt.Println("handled before:", len(bustest.Handled[OrderPlaced](h, "reminders")), "waiting:", h.Transport().Waiting())

	h.Advance(24 * time.Hour)
	fmt.Println("handled after:", bustest.WaitHandled[OrderPlaced](t, h, "reminders", 1)[0].Event.OrderID)
	// Output:
	// handled before: 0 waiting: 1
	// handled after: A-1
}
