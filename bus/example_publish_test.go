package bus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/memory"
)

// PaymentCharged is an event billing publishes once it charged an order.
type PaymentCharged struct {
	OrderID string `json:"order_id"`
}

func (PaymentCharged) EventName() string { return "payments.charged" }

// startBus returns a running bus on a new memory transport, and a function
// that closes both.
func startBus(register func(b *bus.Bus)) (*bus.Bus, func()) {
	b, err := bus.New(memory.New(memory.Config{}), bus.Config{Service: "checkout", CloseTransport: true})
	if err != nil {
		panic(err)
	}
	register(b)
	go b.Run(context.Background())
	<-b.Running()
	return b, func() {
		if err := b.Close(context.Background()); err != nil {
			panic(err)
		}
	}
}

// Publish options set the ordering key, the correlation id and extra
// metadata; the handler reads them back from its context.
func ExamplePublish() {
	got := make(chan bus.Metadata, 1)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
			md, _ := bus.MetadataFrom(ctx)
			got <- md
			return nil
		})
	})
	defer stop()

	err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1", Total: 42.5},
		bus.WithKey("customer-7"),                // ordering key: ce_partitionkey, the Kafka partition key
		bus.WithCorrelationID("checkout-flow-9"), // shared by every message of the flow
		bus.WithMetadata("tenant", "acme"),       // any extra metadata entry
	)
	if err != nil {
		panic(err)
	}
	md := <-got
	fmt.Println(md.Event, md.Source, md.Key, md.CorrelationID, md.Raw.Get("tenant"))
	// Output:
	// orders.placed checkout customer-7 checkout-flow-9 acme
}

// A message published from inside a handler carries the handled message's
// id as its causation id, and the flow's correlation id.
func ExamplePublish_fromHandler() {
	got := make(chan bus.Metadata, 1)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
			return bus.Publish(ctx, b, PaymentCharged{OrderID: e.OrderID}) // pass the handler's ctx on
		})
		_ = bus.Subscribe(b, "notifications", func(ctx context.Context, e PaymentCharged) error {
			md, _ := bus.MetadataFrom(ctx)
			got <- md
			return nil
		})
	})
	defer stop()

	var orderID string
	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1"}, bus.StoreID(&orderID)); err != nil {
		panic(err)
	}
	md := <-got
	fmt.Println(md.Event, "caused by the order:", md.CausationID == orderID, "correlated with it:", md.CorrelationID == orderID)
	// Output:
	// payments.charged caused by the order: true correlated with it: true
}

// WithID sets the event's id, an idempotency key: a handler that
// deduplicates on Metadata.ID sees a republish as a duplicate. StoreID
// tells the caller the id, chosen or assigned.
func ExampleWithID() {
	ids := make(chan string, 2)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
			md, _ := bus.MetadataFrom(ctx)
			ids <- md.ID
			return nil
		})
	})
	defer stop()

	var stored string
	for range 2 { // a retried request publishes the same event twice
		if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1"}, bus.WithID("order-A-1"), bus.StoreID(&stored)); err != nil {
			panic(err)
		}
	}
	fmt.Println(stored, <-ids, <-ids)
	// Output:
	// order-A-1 order-A-1 order-A-1
}

// StoreID learns the UUIDv7 busline assigned, for logs or correlation.
func ExampleStoreID() {
	b, stop := startBus(func(*bus.Bus) {})
	defer stop()

	var id string
	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1"}, bus.StoreID(&id)); err != nil {
		panic(err)
	}
	fmt.Println(len(id), "bytes, version", id[14:15])
	// Output:
	// 36 bytes, version 7
}

// A scheduled event waits in the transport, not in a consumer, and is
// delivered once its delay has passed.
func ExampleWithDelay() {
	handled := make(chan time.Time, 1)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "reminders", func(ctx context.Context, e OrderPlaced) error {
			handled <- time.Now()
			return nil
		})
	})
	defer stop()

	const delay = 50 * time.Millisecond
	published := time.Now()
	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "A-1"}, bus.WithDelay(delay)); err != nil {
		panic(err)
	}
	fmt.Println("waiting in the transport:", b.Transport().(*memory.Transport).Waiting())
	fmt.Println("handled after its delay:", (<-handled).Sub(published) >= delay)
	// Output:
	// waiting in the transport: 1
	// handled after its delay: true
}

// PublishBatch sends the events of one topic in one call to the transport
// and returns their ids in order; a group receives them in that order.
func ExamplePublishBatch() {
	handled := make(chan string, 3)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
			handled <- e.OrderID
			return nil
		})
	})
	defer stop()

	ids, err := bus.PublishBatch(context.Background(), b,
		bus.Item(OrderPlaced{OrderID: "A-1"}, bus.WithKey("customer-7")),
		bus.Item(OrderPlaced{OrderID: "A-2"}, bus.WithKey("customer-7")),
		bus.Item(OrderPlaced{OrderID: "A-3"}, bus.WithID("order-A-3")),
	)
	if err != nil {
		panic(err) // a *bus.BatchError says which events were sent
	}
	fmt.Println(len(ids), ids[2])
	fmt.Println(<-handled, <-handled, <-handled)
	// Output:
	// 3 order-A-3
	// A-1 A-2 A-3
}
