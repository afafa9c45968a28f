package bus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/memory"
)

// OrderPlaced is an event: a struct with a stable wire name.
type OrderPlaced struct {
	OrderID string  `json:"order_id"`
	Total   float64 `json:"total"`
}

func (OrderPlaced) EventName() string { return "orders.placed" }

func Example() {
	ctx := context.Background()
	transport := memory.New(memory.Config{})
	defer transport.Close()

	b, err := bus.New(transport, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}

	handled := make(chan string)
	err = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		handled <- fmt.Sprintf("billing charged %s %.2f (event %s from %s, attempt %d)", e.OrderID, e.Total, md.Event, md.Source, md.Attempt)
		return nil
	})
	if err != nil {
		panic(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Run(runCtx)

	if err := bus.Publish(ctx, b, OrderPlaced{OrderID: "A-1", Total: 42.5}); err != nil {
		panic(err)
	}
	select {
	case line := <-handled:
		fmt.Println(line)
	case <-time.After(5 * time.Second):
		fmt.Println("timed out")
	}
	if err := b.Close(ctx); err != nil {
		panic(err)
	}
	// Output:
	// billing charged A-1 42.50 (event orders.placed from checkout, attempt 1)
}

// The default codec, bus.JSON, writes what encoding/json writes; StdJSON is
// encoding/json itself, for a team that wants no other JSON implementation.
func ExampleCodec() {
	b, err := bus.New(memory.New(memory.Config{}), bus.Config{Service: "checkout", Codec: bus.StdJSON, CloseTransport: true})
	if err != nil {
		panic(err)
	}
	defer b.Close(context.Background())

	fast, _ := bus.JSON.Marshal(OrderPlaced{OrderID: "A-1", Total: 42.5})
	std, _ := bus.StdJSON.Marshal(OrderPlaced{OrderID: "A-1", Total: 42.5})
	fmt.Println(string(fast), string(fast) == string(std), bus.StdJSON.ContentType())
	// Output:
	// {"order_id":"A-1","total":42.5} true application/json
}
