package bustest_test

import (
	"context"
	"fmt"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/bustest"
	"github.com/busline/busline/config"
)

// The harness runs with the application's own settings, here parsed from
// its YAML: the per-group concurrency and retry policy apply in the test as
// in production, on the memory transport whatever transport.kind says.
func ExampleWithConfig() {
	t := newExampleT()
	defer t.finish()
	cfg, err := config.Parse([]byte(`
service: checkout
transport: {kind: memory}
subscriptions:
  billing: {concurrency: 4, retry: {attempts: 1, delays: []}}
`), "busline.yaml", nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h := bustest.New(t, bustest.WithConfig(cfg.BusConfig()))

	err = bus.Subscribe(h.Bus(), "billing", func(ctx context.Context, e OrderPlaced) error {
		return fmt.Errorf("order %s: declined", e.OrderID)
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := bus.Publish(context.Background(), h.Bus(), OrderPlaced{OrderID: "A-1"}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	m := bustest.WaitPoisoned[OrderPlaced](t, h, "billing", 1)[0]
	fmt.Printf("from %s: poisoned after %d attempt, no delayed tier: %q\n", m.Metadata.Source, m.Failure.Attempts, m.Failure.Error)
	// Output:
	// from checkout: poisoned after 1 attempt, no delayed tier: "order A-1: declined"
}
