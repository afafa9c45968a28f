// Command service is a busline service as it runs in production: its broker
// comes from busline.yaml, it handles events until SIGINT or SIGTERM, then
// stops gracefully (in-flight handlers finish within shutdown_grace, the rest
// is redelivered).
//
//	go run ./examples/service -config examples/service/busline.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	_ "github.com/busline/busline/transports/all" // every transport, picked by transport.kind
)

// OrderPlaced is the event this service handles.
type OrderPlaced struct {
	OrderID string  `json:"order_id"`
	Total   float64 `json:"total"`
}

// EventName is the event's stable wire name.
func (OrderPlaced) EventName() string { return "orders.placed" }

func main() {
	path := flag.String("config", "busline.yaml", "the service's busline configuration")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *path, slog.Default()); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then closes the bus gracefully.
func run(ctx context.Context, path string, log *slog.Logger) error {
	b, err := config.Open(ctx, path, config.WithLogger(log))
	if err != nil {
		return err
	}
	return serve(ctx, b, log)
}

// serve registers the service's handlers on b and runs them until ctx ends.
func serve(ctx context.Context, b *bus.Bus, log *slog.Logger) error {
	err := bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		log.Info("charged", "order", e.OrderID, "total", e.Total, "id", md.ID, "attempt", md.Attempt)
		return nil
	})
	if err != nil {
		_ = b.Close(ctx)
		return err
	}
	return b.Run(ctx) // until SIGINT/SIGTERM; then Close with shutdown_grace
}
