package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
)

// OrderPlaced is published when a customer places an order.
type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Cents   int    `json:"cents"`
}

// EventName is the wire name, and so the topic: stream busline:orders.placed.
func (OrderPlaced) EventName() string { return "orders.placed" }

func main() {
	addr := os.Getenv("BUSLINE_REDIS_ADDR")
	if addr == "" {
		addr = redis.DefaultAddr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, addr); err != nil {
		fmt.Fprintln(os.Stderr, "redis example:", err)
		os.Exit(1)
	}
}

// run publishes three orders and returns once billing handled them.
func run(ctx context.Context, w io.Writer, addr string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tr, err := redis.New(ctx, redis.Config{Addr: addr, Service: "checkout", Logger: logger})
	if err != nil {
		return err
	}
	defer tr.Close()

	// Each run uses its own topic so that reruns do not see old orders.
	topic := "orders.placed.example-" + uuid.NewString()[:8]
	defer tr.Client().Del(context.Background(), tr.Stream(topic))
	b, err := bus.New(tr, bus.Config{Service: "checkout", Logger: logger, Topics: map[string]string{OrderPlaced{}.EventName(): topic}})
	if err != nil {
		return err
	}
	const n = 3
	var (
		mu      sync.Mutex
		handled = map[string]bool{}
		done    = make(chan struct{})
	)
	err = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		mu.Lock()
		defer mu.Unlock()
		if handled[e.OrderID] {
			return nil // at-least-once: a redelivery is harmless
		}
		handled[e.OrderID] = true
		fmt.Fprintf(w, "billing: charged %d cents for %s (from %s)\n", e.Cents, e.OrderID, md.Source)
		if len(handled) == n {
			close(done)
		}
		return nil
	})
	if err != nil {
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	for i := 1; i <= n; i++ {
		if err := bus.Publish(ctx, b, OrderPlaced{OrderID: fmt.Sprintf("order-%d", i), Cents: 1000 * i}); err != nil {
			return err
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("orders not handled: %w", ctx.Err())
	}
	if err := b.Close(context.Background()); err != nil {
		return err
	}
	fmt.Fprintln(w, "all orders billed")
	return <-runErr
}
