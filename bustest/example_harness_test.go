package bustest_test

import (
	"context"
	"fmt"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/bustest"
)

// A test runs the application's own registration code (register, with its
// bus.Subscribe calls) on the harness's bus, publishes, and waits for what
// the handler published in turn.
func Example() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.finish()

	h := bustest.New(t)
	if err := register(h.Bus()); err != nil {
		t.Fatalf("register: %v", err)
	}
	var orderID string
	if err := bus.Publish(context.Background(), h.Bus(), OrderPlaced{OrderID: "A-1", Total: 42}, bus.StoreID(&orderID)); err != nil {
		t.Fatalf("publish: %v", err)
	}

	charged := bustest.WaitPublished[PaymentCharged](t, h, 1)
	fmt.Println("charged", charged[0].Event.OrderID, "with key", charged[0].Metadata.Key)
	fmt.Println("caused by the order:", charged[0].Metadata.CausationID == orderID)
	// Output:
	// charged A-1 with key A-1
	// caused by the order: true
}

func ExampleWaitHandled() {
	t := newExampleT()
	defer t.finish()
	h := bustest.New(t)

	err := bus.Subscribe(h.Bus(), "shipping", func(ctx context.Context, e OrderPlaced) error {
		return nil // ship it
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	for _, id := range []string{"A-1", "A-2"} {
		if err := bus.Publish(context.Background(), h.Bus(), OrderPlaced{OrderID: id}, bus.WithKey("customer-7")); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}

	for _, m := range bustest.WaitHandled[OrderPlaced](t, h, "shipping", 2) {
		fmt.Println(m.Metadata.Group, "handled", m.Event.OrderID, "key", m.Metadata.Key, "attempt", m.Metadata.Attempt)
	}
	// Output:
	// shipping handled A-1 key customer-7 attempt 1
	// shipping handled A-2 key customer-7 attempt 1
}

// A permanent failure skips every retry and delay: the message goes
// straight to the group's poison lane, with a failure record.
func ExampleWaitPoisoned() {
	t := newExampleT()
	defer t.finish()
	h := bustest.New(t)

	err := bus.Subscribe(h.Bus(), "billing", func(ctx context.Context, e OrderPlaced) error {
		return bus.Permanent(fmt.Errorf("order %s: no such customer", e.OrderID))
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := bus.Publish(context.Background(), h.Bus(), OrderPlaced{OrderID: "A-1"}); err != nil {
		t.Fatalf("publish: %v", err)
	}

	m := bustest.WaitPoisoned[OrderPlaced](t, h, "billing", 1)[0]
	fmt.Printf("%s poisoned: reason %s, error %q, after %d attempt\n", m.Event.OrderID, m.Failure.Reason, m.Failure.Error, m.Failure.Attempts)
	// Output:
	// A-1 poisoned: reason permanent, error "order A-1: no such customer", after 1 attempt
}
