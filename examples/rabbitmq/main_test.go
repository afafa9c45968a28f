package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestExample runs the example against the real broker and checks its
// output.
func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ; skipped under -short")
	}
	if os.Getenv("BUSLINE_RABBITMQ_URL") == "" {
		t.Setenv("BUSLINE_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
	}
	var out strings.Builder
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v (is RabbitMQ running? start it with `bash scripts/brokers.sh`, see examples/rabbitmq/README.md)\n%s", err, out.String())
	}
	want := `checkout: published 3 orders to exchange shop.order_placed (confirmed)
billing:  charged 10.50 for order A-1
billing:  charged 21.00 for order A-2
billing:  charged 31.50 for order A-3
shipping: attempt 1 for order A-2 failed: warehouse unavailable
shipping: booked order A-1 on attempt 1
shipping: booked order A-2 on attempt 2
shipping: booked order A-3 on attempt 1
done: billing and shipping handled every order; the bus shut down cleanly
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
