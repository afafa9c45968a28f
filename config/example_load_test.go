package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
)

// Load reads a file and expands ${VAR} references from the environment; a
// variable that is not set and has no default is an error that names it.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "busline")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "busline.yaml")
	_ = os.WriteFile(path, []byte(`
service: ${BUSLINE_EXAMPLE_SERVICE:-billing}
retry:
  attempts: 5
  delays: [30s, 5m]
subscriptions:
  invoices: {concurrency: 8, retry: {delays: []}}
`), 0o600)

	cfg, err := config.Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Service, cfg.Transport.Kind == "" || cfg.Transport.Kind == "memory")
	fmt.Println("default groups:", cfg.RetryFor("audit").Attempts, cfg.RetryFor("audit").Delays)
	fmt.Println("invoices:", cfg.SubscriptionFor("invoices").Concurrency, cfg.RetryFor("invoices").Attempts, cfg.RetryFor("invoices").Delays)

	_, err = config.Load(filepath.Join(dir, "missing.yaml"))
	fmt.Println(err != nil)
	// Output:
	// billing true
	// default groups: 5 [30s 5m0s]
	// invoices: 8 5 []
	// true
}

// Parse with a lookup function instead of the process environment; a
// missing variable is reported with its position.
func ExampleParse_environment() {
	yaml := []byte(`service: billing
transport:
  kind: rabbitmq
  rabbitmq: {url: "${RABBITMQ_URL}"}
`)
	_, err := config.Parse(yaml, "busline.yaml", func(string) (string, bool) { return "", false })
	fmt.Println(err)
	// Output:
	// config: busline.yaml:4:20: environment variable ${RABBITMQ_URL} is not set: set it, or give a default with ${RABBITMQ_URL:-value}
}

// BusConfig turns a file's settings into a bus.Config, for a program that
// opens its transport itself or builds the bus in a test.
func ExampleConfig_BusConfig() {
	cfg, err := config.Parse([]byte(`
service: billing
shutdown_grace: 10s
retry: {attempts: 2, delays: [1m]}
subscriptions:
  invoices: {concurrency: 4, timeout: 30s, ordered: false}
topics:
  orders.placed: orders-v2
`), "busline.yaml", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	bc := cfg.BusConfig()
	inv := bc.Subscriptions["invoices"]
	fmt.Println(bc.Service, bc.ShutdownGrace, bc.Retry.Attempts, bc.Delays, bc.Topics["orders.placed"])
	fmt.Println(inv.Concurrency, inv.Timeout, inv.Retry.Attempts, inv.Delays)
	// Output:
	// billing 10s 2 [1m0s] orders-v2
	// 4 30s 2 [1m0s]
}

// Config.Open opens the transport the file names and a bus on it; closing
// the bus closes the transport.
func ExampleConfig_Open() {
	cfg, err := config.Parse([]byte("service: checkout\ntransport: {kind: memory}\n"), "busline.yaml", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := cfg.Open(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	handled := make(chan string, 1)
	_ = bus.Subscribe(b, "billing", func(ctx context.Context, e orderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		handled <- md.Source + " -> " + md.Group + ": " + e.ID
		return nil
	})
	go b.Run(context.Background())
	if err := bus.Publish(context.Background(), b, orderPlaced{ID: "A-1"}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.TransportKind(), <-handled)
	fmt.Println("close:", b.Close(context.Background()))
	// Output:
	// memory checkout -> billing: A-1
	// close: <nil>
}
