package bus_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/memory"
)

// Permanent skips every retry and delayed tier: the message goes to the
// group's poison lane after one attempt, even with five allowed.
func ExamplePermanent() {
	transport := memory.New(memory.Config{})
	defer transport.Close()
	b, err := bus.New(transport, bus.Config{Service: "checkout", Retry: middleware.RetryPolicy{Attempts: 5}})
	if err != nil {
		panic(err)
	}
	attempts := make(chan int, 5)
	_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		attempts <- md.Attempt
		return bus.Permanent(fmt.Errorf("order %s: currency XYZ is not supported", e.OrderID))
	})
	go b.Run(context.Background())
	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1"}); err != nil {
		panic(err)
	}
	fmt.Println("attempt", <-attempts)
	// Close lets the message in flight finish its way to the poison lane.
	if err := b.Close(context.Background()); err != nil {
		panic(err)
	}

	lane, _ := bus.NewPoisonLane(transport, "orders.placed", "billing")
	poisoned, err := lane.List(context.Background())
	if err != nil {
		panic(err)
	}
	for _, m := range poisoned {
		fmt.Printf("%s in %s: %s %q after %d attempt\n", m.Event, lane.Topic(), m.Failure.Reason, m.Failure.Error, m.Failure.Attempts)
	}
	fmt.Println(bus.IsPermanent(bus.Permanent(errors.New("x"))), bus.Permanent(nil))
	// Output:
	// attempt 1
	// orders.placed in orders.placed.billing.poison: permanent "order A-1: currency XYZ is not supported" after 1 attempt
	// true <nil>
}

// List shows a group's poison lane; once the cause is fixed, Replay puts
// the messages back to that group only, through its retry lane.
func ExamplePoisonLane() {
	ctx := context.Background()
	transport := memory.New(memory.Config{})
	defer transport.Close()

	// A first version of billing that cannot handle the event.
	b, err := bus.New(transport, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	called := make(chan struct{}, 1)
	_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		called <- struct{}{}
		return bus.Permanent(errors.New("tax table missing"))
	})
	go b.Run(ctx)
	if err := bus.Publish(ctx, b, OrderPlaced{OrderID: "A-1"}); err != nil {
		panic(err)
	}
	<-called
	if err := b.Close(ctx); err != nil { // the failed message reaches the poison lane first
		panic(err)
	}

	lane, err := bus.NewPoisonLane(transport, "orders.placed", "billing")
	if err != nil {
		panic(err)
	}
	list, err := lane.List(ctx)
	if err != nil {
		panic(err)
	}
	for _, m := range list {
		fmt.Printf("poisoned: %s, group %s, %q, copies %d\n", m.Event, m.Failure.Group, m.Failure.Error, m.Copies)
	}

	// The fixed version of billing runs, and the lane is replayed to it.
	fixed, err := bus.New(transport, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	handled := make(chan string, 1)
	_ = bus.Subscribe(fixed, "billing", func(ctx context.Context, e OrderPlaced) error {
		handled <- e.OrderID
		return nil
	})
	go fixed.Run(ctx)
	n, err := lane.Replay(ctx, func(m bus.PoisonMessage) bool { return m.Failure.Reason == "permanent" })
	if err != nil {
		panic(err)
	}
	fmt.Println("replayed", n, "- billing handled", <-handled)
	left, _ := lane.List(ctx)
	fmt.Println("left in the lane:", len(left))
	if err := fixed.Close(ctx); err != nil {
		panic(err)
	}
	// Output:
	// poisoned: orders.placed, group billing, "tax table missing", copies 1
	// replayed 1 - billing handled A-1
	// left in the lane: 0
}
