package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// TestExample runs the example against an in-process Kafka (kfake).
func TestExample(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := map[string]string{
		"BUSLINE_KAFKA_BROKERS": c.ListenAddrs()[0],
		"ORDERS_TOPIC":          "example." + uuid.NewString()[:8],
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"checkout: published 4 orders",
		"billing: charged ada 12.50 for order A-1 (attempt 1)",
		"billing: charged ada 30.00 for order A-2 (attempt 1)",
		"billing: charged bob 7.00 for order B-1 (attempt 1)",
		"billing: order B-2 failed on attempt 1 (card declined); it moves to the retry lane",
		"billing: charged bob 9.90 for order B-2 (attempt 2)",
		"done: every order charged",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "order A-1 ") > strings.Index(got, "order A-2 ") {
		t.Errorf("ada's orders handled out of order:\n%s", got)
	}
}
