package bus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/memory"
)

// Close lets in-flight handlers finish within the grace period, then
// cancels their contexts. A cancelled handler's message is neither acked
// nor counted as a failure: the next instance of the group gets it again,
// still at attempt 1.
func ExampleBus_Close() {
	ctx := context.Background()
	transport := memory.New(memory.Config{})
	defer transport.Close()

	b, err := bus.New(transport, bus.Config{Service: "checkout", ShutdownGrace: 50 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	started := make(chan struct{})
	_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		close(started)
		<-ctx.Done() // a handler that takes longer than the grace period
		fmt.Println("handler stopped:", ctx.Err())
		return ctx.Err()
	})
	go b.Run(ctx)
	if err := bus.Publish(ctx, b, OrderPlaced{OrderID: "A-1"}); err != nil {
		panic(err)
	}
	<-started
	fmt.Println("close:", b.Close(ctx))
	fmt.Println("publish after close:", bus.Publish(ctx, b, OrderPlaced{OrderID: "A-2"}))

	next, err := bus.New(transport, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	redelivered := make(chan int, 1)
	_ = bus.Subscribe(next, "billing", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		redelivered <- md.Attempt
		return nil
	})
	go next.Run(ctx)
	fmt.Println("redelivered at attempt", <-redelivered)
	fmt.Println("close:", next.Close(ctx))
	// Output:
	// handler stopped: context canceled
	// close: <nil>
	// publish after close: bus.Publish orders.placed: bus: closed
	// redelivered at attempt 1
	// close: <nil>
}
