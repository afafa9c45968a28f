package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/memory"
)

// OrderPlaced is the event: a plain struct with a stable wire name.
type OrderPlaced struct {
	OrderID  string  `json:"order_id"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// EventName is the wire name: it names the topic, whatever the Go type is called.
func (OrderPlaced) EventName() string { return "orders.placed" }

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx := context.Background()
	transport := memory.New(memory.Config{})
	defer transport.Close()

	b, err := bus.New(transport, bus.Config{
		Service: "checkout",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}

	// Handlers run on their own goroutines; they report through lines, which
	// run prints in the order they arrive.
	lines := make(chan string, 4)

	// billing charges every order.
	err = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		lines <- fmt.Sprintf("billing:  charged %s %.2f for order %s", e.Customer, e.Total, e.OrderID)
		return nil
	})
	if err != nil {
		return err
	}

	// shipping fails on its first try, as if the warehouse were briefly down;
	// busline retries it.
	var shippingCalls atomic.Int32
	err = bus.Subscribe(b, "shipping", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		if shippingCalls.Add(1) == 1 {
			lines <- fmt.Sprintf("shipping: attempt %d for order %s failed: warehouse unavailable; busline will retry", md.Attempt, e.OrderID)
			return errors.New("warehouse unavailable")
		}
		lines <- fmt.Sprintf("shipping: booked a parcel for order %s on attempt %d", e.OrderID, md.Attempt)
		return nil
	})
	if err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	running := make(chan error, 1)
	go func() { running <- b.Run(runCtx) }()

	order := OrderPlaced{OrderID: "A-1001", Customer: "ada@example.com", Total: 42.50}
	if err := bus.Publish(ctx, b, order, bus.WithKey(order.Customer)); err != nil {
		return err
	}
	fmt.Fprintf(out, "checkout: published %s for order %s and moved on\n", order.EventName(), order.OrderID)

	timeout := time.After(10 * time.Second)
	for range 3 {
		select {
		case line := <-lines:
			fmt.Fprintln(out, line)
		case <-timeout:
			return errors.New("the handlers did not finish within 10s")
		}
	}
	stop()
	if err := <-running; err != nil {
		return err
	}
	fmt.Fprintln(out, "done: both groups handled the event; the bus shut down cleanly")
	return nil
}
