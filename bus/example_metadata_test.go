package bus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/busline/busline/bus"
)

// A handler reads the metadata of the message it handles from its context,
// without giving up its typed signature.
func ExampleMetadataFrom() {
	got := make(chan string, 1)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
			md, ok := bus.MetadataFrom(ctx)
			got <- fmt.Sprintf("ok=%v event=%s source=%s topic=%s group=%s key=%s attempt=%d published=%v",
				ok, md.Event, md.Source, md.Topic, md.Group, md.Key, md.Attempt, !md.PublishedAt.IsZero())
			return nil
		})
	})
	defer stop()

	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1"}, bus.WithKey("customer-7")); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	_, ok := bus.MetadataFrom(context.Background())
	fmt.Println("outside a handler:", ok)
	// Output:
	// ok=true event=orders.placed source=checkout topic=orders.placed group=billing key=customer-7 attempt=1 published=true
	// outside a handler: false
}

// HandlerContext builds the context a handler receives, so a handler that
// reads MetadataFrom can be unit-tested without a bus (package bustest
// wraps it with defaults).
func ExampleHandlerContext() {
	handler := func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		if md.Attempt > 3 {
			return bus.Permanent(fmt.Errorf("order %s: giving up after %d attempts", e.OrderID, md.Attempt))
		}
		fmt.Printf("charging %s (message %s, attempt %d, published %s)\n", e.OrderID, md.ID, md.Attempt, md.PublishedAt.Format(time.DateOnly))
		return nil
	}

	ctx := bus.HandlerContext(context.Background(), bus.Metadata{
		ID:          "msg-1",
		Event:       "orders.placed",
		PublishedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	})
	fmt.Println(handler(ctx, OrderPlaced{OrderID: "A-1"}))
	ctx = bus.HandlerContext(context.Background(), bus.Metadata{ID: "msg-1", Attempt: 4})
	fmt.Println(handler(ctx, OrderPlaced{OrderID: "A-1"}))
	// Output:
	// charging A-1 (message msg-1, attempt 1, published 2026-03-01)
	// <nil>
	// permanent: order A-1: giving up after 4 attempts
}
