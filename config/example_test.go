package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
)

func ExampleParse() {
	yaml := []byte(`
service: billing
transport:
  kind: ${BUS_TRANSPORT:-memory}
subscriptions:
  invoices:
    concurrency: 4
    retry:
      attempts: 5
      delays: []
`)
	cfg, err := config.Parse(yaml, "busline.yaml", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := cfg.RetryFor("invoices")
	fmt.Println(cfg.Service, cfg.Transport.Kind, cfg.ShutdownGrace)
	fmt.Println(cfg.SubscriptionFor("invoices").Concurrency, r.Attempts, r.Backoff.Initial, len(r.Delays))
	fmt.Println(cfg.RetryFor("audit").Delays)
	// Output:
	// billing memory 30s
	// 4 5 100ms 0
	// [10s 1m0s 10m0s]
}

func ExampleParse_problems() {
	yaml := []byte(`service: billing
subscriptions:
  invoices:
    concurency: 4
    timeout: 30
`)
	_, err := config.Parse(yaml, "busline.yaml", nil)
	fmt.Println(err)

	var e *config.Error
	if errors.As(err, &e) {
		fmt.Println(e.Problems[0].Line, e.Problems[0].Path)
	}
	// Output:
	// config: 2 problems:
	// 	busline.yaml:4:5: subscriptions.invoices.concurency: unknown key "concurency" (did you mean "concurrency"?)
	// 	busline.yaml:5:14: subscriptions.invoices.timeout: expected a duration such as "30s" or "1m", got "30" (a number needs a unit: write "30s" or "30ms")
	// 4 subscriptions.invoices.concurency
}

func ExampleTransport_Decode() {
	yaml := []byte(`
service: billing
transport:
  kind: rabbitmq
  rabbitmq:
    url: ${RABBITMQ_URL:-amqp://guest:guest@localhost:5672/}
    prefetch: 20
`)
	cfg, err := config.Parse(yaml, "busline.yaml", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// A transport package declares its settings and their defaults...
	settings := struct {
		URL      string `yaml:"url"`
		Prefetch int    `yaml:"prefetch"`
		Durable  bool   `yaml:"durable"`
	}{Durable: true}
	// ...and decodes its section over them.
	if err := cfg.Transport.Decode(&settings); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(settings.URL, settings.Prefetch, settings.Durable)
	// Output:
	// amqp://guest:guest@localhost:5672/ 20 true
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "busline")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "busline.yaml")
	_ = os.WriteFile(path, []byte(`
service: checkout
transport:
  kind: ${BUSLINE_EXAMPLE_TRANSPORT:-memory}   # rabbitmq, redis or kafka: nothing else changes
subscriptions:
  billing: {concurrency: 4, timeout: 30s}
`), 0o600)

	b, err := config.Open(context.Background(), path)
	if err != nil {
		fmt.Println(err)
		return
	}
	handled := make(chan string, 1)
	_ = bus.Subscribe(b, "billing", func(ctx context.Context, e orderPlaced) error {
		handled <- e.ID
		return nil
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	_ = bus.Publish(context.Background(), b, orderPlaced{ID: "A-1"})
	fmt.Println("billing handled", <-handled)
	stop()
	fmt.Println("run:", <-done)
	// Output:
	// billing handled A-1
	// run: <nil>
}
