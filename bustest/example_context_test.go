package bustest_test

import (
	"context"
	"fmt"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/bustest"
)

// A handler that reads its message's metadata, unit-tested with no bus:
// Context carries the metadata bus.MetadataFrom returns.
func ExampleContext() {
	t := newExampleT()
	defer t.finish()

	// The handler under test skips redeliveries it has seen before.
	seen := map[string]bool{}
	handler := func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		if seen[md.ID] {
			fmt.Println("duplicate", md.ID, "at attempt", md.Attempt, "skipped")
			return nil
		}
		seen[md.ID] = true
		fmt.Println("charged", e.OrderID, "for message", md.ID, "of", md.Event)
		return nil
	}

	md := bus.Metadata{ID: "msg-1"}
	_ = handler(bustest.Context[OrderPlaced](t, md), OrderPlaced{OrderID: "A-1"})
	md.Attempt = 2
	_ = handler(bustest.Context[OrderPlaced](t, md), OrderPlaced{OrderID: "A-1"})
	// Output:
	// charged A-1 for message msg-1 of orders.placed
	// duplicate msg-1 at attempt 2 skipped
}
