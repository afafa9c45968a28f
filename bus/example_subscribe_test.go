package bus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/memory"
)

// Options given to Subscribe override the group's settings in
// bus.Config.Subscriptions: here two attempts in place, 10ms apart, and no
// delayed redelivery.
func ExampleSubscribe() {
	transport := memory.New(memory.Config{})
	defer transport.Close()
	b, err := bus.New(transport, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}

	lines := make(chan string, 2)
	err = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		if md.Attempt == 1 {
			lines <- fmt.Sprintf("attempt 1 at %s: ledger busy", e.OrderID)
			return errors.New("ledger busy") // retried in place
		}
		lines <- fmt.Sprintf("attempt %d at %s: charged", md.Attempt, e.OrderID)
		return nil
	},
		bus.WithConcurrency(4),          // four messages at once (gives up per-key order)
		bus.WithTimeout(30*time.Second), // each attempt's context is cancelled after 30s
		bus.WithRetry(middleware.RetryPolicy{Attempts: 2, Backoff: middleware.Backoff{Initial: 10 * time.Millisecond}}),
		bus.WithDelays(), // no delayed tiers: after the retries, the poison lane
	)
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go b.Run(ctx)

	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1"}); err != nil {
		panic(err)
	}
	fmt.Println(<-lines)
	fmt.Println(<-lines)
	if err := b.Close(context.Background()); err != nil {
		panic(err)
	}
	// Output:
	// attempt 1 at A-1: ledger busy
	// attempt 2 at A-1: charged
}

// A second handler for the same event in the same group is refused: each
// group handles an event once. Another group gets its own copy.
func ExampleSubscribe_groups() {
	transport := memory.New(memory.Config{})
	defer transport.Close()
	b, err := bus.New(transport, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	defer b.Close(context.Background())

	noop := func(context.Context, OrderPlaced) error { return nil }
	fmt.Println(bus.Subscribe(b, "billing", noop))
	fmt.Println(bus.Subscribe(b, "shipping", noop))
	err = bus.Subscribe(b, "billing", noop)
	fmt.Println(errors.Is(err, bus.ErrDuplicateHandler), err)
	// Output:
	// <nil>
	// <nil>
	// true bus.Subscribe orders.placed for group billing: bus: duplicate handler
}
