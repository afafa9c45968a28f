package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	_ "github.com/busline/busline/transports/kafka" // registers kind "kafka"
)

// OrderPlaced is the event; its wire name names the Kafka topic.
type OrderPlaced struct {
	OrderID  string  `json:"order_id"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// EventName is the wire name.
func (OrderPlaced) EventName() string { return "orders.placed" }

// configYAML is what would live in the service's config file.
const configYAML = `
service: checkout
transport:
  kind: kafka
  kafka:
    brokers: ["${BUSLINE_KAFKA_BROKERS:-127.0.0.1:9092}"]
    partitions: 3
retry:
  attempts: 1
  delays: [1s]
topics:
  orders.placed: "${ORDERS_TOPIC:-example.orders.placed}"
`

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "kafka example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, lookupEnv func(string) (string, bool)) error {
	cfg, err := config.Parse([]byte(configYAML), "busline.yaml", lookupEnv)
	if err != nil {
		return err
	}
	b, err := cfg.Open(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer b.Close(context.Background())

	orders := []OrderPlaced{
		{"A-1", "ada", 12.50}, {"B-1", "bob", 7.00}, {"A-2", "ada", 30.00}, {"B-2", "bob", 9.90},
	}
	lines := make(chan string, 2*len(orders))
	var failedOnce atomic.Bool
	err = bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		if e.OrderID == "B-2" && failedOnce.CompareAndSwap(false, true) {
			lines <- fmt.Sprintf("billing: order %s failed on attempt %d (card declined); it moves to the retry lane", e.OrderID, md.Attempt)
			return errors.New("card declined")
		}
		lines <- fmt.Sprintf("billing: charged %s %.2f for order %s (attempt %d)", e.Customer, e.Total, e.OrderID, md.Attempt)
		return nil
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(runCtx) }()
	select {
	case <-b.Running():
	case err := <-runErr:
		return err
	}

	for _, o := range orders {
		// The key keeps one customer's orders in order: same partition.
		if err := bus.Publish(ctx, b, o, bus.WithKey(o.Customer)); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "checkout: published %d orders\n", len(orders))

	charged := 0
	for charged < len(orders) {
		select {
		case l := <-lines:
			fmt.Fprintln(out, l)
			if !strings.Contains(l, "failed") {
				charged++
			}
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d orders charged: %w", charged, len(orders), ctx.Err())
		}
	}
	fmt.Fprintln(out, "done: every order charged")
	stop()
	return <-runErr
}
