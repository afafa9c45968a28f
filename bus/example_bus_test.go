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

// New validates the whole configuration and reports every problem at once.
// Per-group settings live in Subscriptions; Subscribe's options override
// them.
func ExampleNew() {
	t := memory.New(memory.Config{})
	defer t.Close()

	_, err := bus.New(t, bus.Config{
		Service:       "check out",
		ShutdownGrace: -time.Second,
	})
	fmt.Println(err)

	b, err := bus.New(t, bus.Config{
		Service: "checkout",
		Retry:   middleware.RetryPolicy{Attempts: 5},
		Delays:  []time.Duration{30 * time.Second, 5 * time.Minute},
		Topics:  map[string]string{"orders.placed": "orders-v2"}, // the wire topic of an event
		Subscriptions: map[string]bus.SubscriptionConfig{
			"billing":  {Concurrency: 8, Timeout: 30 * time.Second},
			"shipping": {Ordered: true}, // strict per-key order: no delayed tiers
		},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close(context.Background())
	_ = bus.Subscribe(b, "billing", func(context.Context, OrderPlaced) error { return nil })
	for _, s := range b.Subscriptions() {
		fmt.Println(s.Event, s.Group, s.Topic, s.Retry, s.Poison)
	}
	// Output:
	// bus.New: invalid config: invalid name: service name "check out" has ' ' at byte 5; use only ASCII letters, digits, '.', '_' and '-'
	// bus.Config.ShutdownGrace -1s is negative
	// orders.placed billing orders-v2 orders-v2.billing.retry orders-v2.billing.poison
}

// Health is the bus's readiness and liveness, for Kubernetes probes.
func ExampleBus_Health() {
	t := memory.New(memory.Config{})
	defer t.Close()
	b, err := bus.New(t, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	_ = bus.Subscribe(b, "billing", func(context.Context, OrderPlaced) error { return nil })
	fmt.Println("before Run: ready", b.Health(context.Background()).Ready())

	go b.Run(context.Background())
	<-b.Running()
	h := b.Health(context.Background())
	fmt.Println("running: ready", h.Ready(), "live", h.Live(), "transport", h.Transport, h.TransportErr)
	for _, s := range h.Subscriptions {
		fmt.Println(s.Event, s.Group, "joined", s.Joined, "consuming", s.Consuming)
	}
	_ = b.Close(context.Background())
	fmt.Println("closed: ready", b.Health(context.Background()).Ready())
	// Output:
	// before Run: ready false
	// running: ready true live true transport memory <nil>
	// orders.placed billing joined true consuming true
	// closed: ready false
}

// A RawEvent publishes a payload already encoded, for tools and bridges
// that have no Go type for the event; typed handlers receive it as usual.
func ExampleRawEvent() {
	got := make(chan OrderPlaced, 1)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
			got <- e
			return nil
		})
	})
	defer stop()

	raw := bus.RawEvent{Name: "orders.placed", Data: []byte(`{"order_id":"A-9","total":7}`)}
	if err := bus.Publish(context.Background(), b, raw); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", <-got)
	// Output:
	// {OrderID:A-9 Total:7}
}

// WithDeliverAt schedules an event for a point in time; one in the past is
// published at once.
func ExampleWithDeliverAt() {
	got := make(chan string, 1)
	b, stop := startBus(func(b *bus.Bus) {
		_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
			got <- e.OrderID
			return nil
		})
	})
	defer stop()

	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "next-month"}, bus.WithDeliverAt(time.Now().Add(30*24*time.Hour))); err != nil {
		panic(err)
	}
	if err := bus.Publish(context.Background(), b, OrderPlaced{OrderID: "overdue"}, bus.WithDeliverAt(time.Now().Add(-time.Hour))); err != nil {
		panic(err)
	}
	fmt.Println(<-got, "handled; waiting in the transport:", b.Transport().(*memory.Transport).Waiting())
	// Output:
	// overdue handled; waiting in the transport: 1
}

// Purge deletes poison messages for good, here those that failed to decode.
func ExamplePoisonLane_Purge() {
	ctx := context.Background()
	transport := memory.New(memory.Config{})
	defer transport.Close()
	b, err := bus.New(transport, bus.Config{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	called := make(chan struct{}, 1)
	_ = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		called <- struct{}{}
		return bus.Permanent(errors.New("order unknown"))
	})
	go b.Run(ctx)
	// Neither is handled: the first does not decode into OrderPlaced, the
	// second fails permanently.
	_ = bus.Publish(ctx, b, bus.RawEvent{Name: "orders.placed", Data: []byte(`{"order_id": 42}`)})
	_ = bus.Publish(ctx, b, OrderPlaced{OrderID: "A-1"})
	<-called
	if err := b.Close(ctx); err != nil { // both reach the poison lane first
		panic(err)
	}

	lane, _ := bus.NewPoisonLane(transport, "orders.placed", "billing")
	n, err := lane.Purge(ctx, func(m bus.PoisonMessage) bool { return m.Failure.Reason == "decode" })
	if err != nil {
		panic(err)
	}
	left, _ := lane.List(ctx)
	fmt.Println("purged", n, "left", len(left), left[0].Failure.Reason)
	// Output:
	// purged 1 left 1 permanent
}
