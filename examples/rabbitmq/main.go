package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/rabbitmq"
)

// OrderPlaced is the event. Its wire name is the topic: the RabbitMQ
// exchange "shop.order_placed", with the queues "shop.order_placed:billing"
// and "shop.order_placed:shipping".
type OrderPlaced struct {
	Run     string  `json:"run"` // this run of the example, to skip orders left by earlier runs
	OrderID string  `json:"order_id"`
	Total   float64 `json:"total"`
}

// EventName is the wire name.
func (OrderPlaced) EventName() string { return "shop.order_placed" }

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rabbitmq example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// URL from BUSLINE_RABBITMQ_URL, else amqp://guest:guest@localhost:5672/.
	transport, err := rabbitmq.New(ctx, rabbitmq.Config{ConnectionName: "checkout", Logger: quiet})
	if err != nil {
		return err
	}
	defer transport.Close()

	b, err := bus.New(transport, bus.Config{Service: "checkout", Logger: quiet})
	if err != nil {
		return err
	}

	runID := uuid.NewString()[:8]
	const orders = 3
	var (
		mu    sync.Mutex
		lines []string
		done  = make(chan struct{})
		count int
	)
	report := func(line string, finished bool) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
		if finished {
			if count++; count == 2*orders {
				close(done)
			}
		}
	}

	// Subscribe declares each group's durable queue at once: orders published
	// from now on wait there even while the group's service is down.
	err = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		if e.Run != runID {
			return nil // left over from an earlier run
		}
		report(fmt.Sprintf("billing:  charged %.2f for order %s", e.Total, e.OrderID), true)
		return nil
	})
	if err != nil {
		return err
	}
	var failed atomic.Bool
	err = bus.Subscribe(b, "shipping", func(ctx context.Context, e OrderPlaced) error {
		if e.Run != runID {
			return nil
		}
		md, _ := bus.MetadataFrom(ctx)
		if e.OrderID == "A-2" && failed.CompareAndSwap(false, true) {
			report(fmt.Sprintf("shipping: attempt %d for order %s failed: warehouse unavailable", md.Attempt, e.OrderID), false)
			return errors.New("warehouse unavailable")
		}
		report(fmt.Sprintf("shipping: booked order %s on attempt %d", e.OrderID, md.Attempt), true)
		return nil
	})
	if err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	running := make(chan error, 1)
	go func() { running <- b.Run(runCtx) }()

	for i := 1; i <= orders; i++ {
		e := OrderPlaced{Run: runID, OrderID: fmt.Sprintf("A-%d", i), Total: float64(i) * 10.5}
		// Publish returns once RabbitMQ confirmed the order.
		if err := bus.Publish(ctx, b, e, bus.WithKey(e.OrderID)); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "checkout: published %d orders to exchange %s (confirmed)\n", orders, rabbitmq.ExchangeName(OrderPlaced{}.EventName()))

	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return errors.New("the handlers did not finish within 30s")
	}
	stop()
	if err := <-running; err != nil {
		return err
	}
	mu.Lock()
	sort.Strings(lines) // handlers run concurrently: print in a stable order
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	mu.Unlock()
	fmt.Fprintln(out, "done: billing and shipping handled every order; the bus shut down cleanly")
	return nil
}
