package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	"github.com/busline/busline/internal/testlog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestServiceHandlesThenStops runs the service on the memory transport:
// it handles an event, and returns nil once its context ends, as SIGTERM
// ends it.
func TestServiceHandlesThenStops(t *testing.T) {
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := config.Open(ctx, "busline.yaml", config.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, b, log) }()
	select {
	case <-b.Running():
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	if err := bus.Publish(ctx, b, OrderPlaced{OrderID: "A-1", Total: 42.5}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "order=A-1") {
		if time.Now().After(deadline) {
			t.Fatalf("the event was not handled; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond) // polling the log sink
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after the signal: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}

// TestConfigIsValid keeps the example's busline.yaml loading.
func TestConfigIsValid(t *testing.T) {
	cfg, err := config.Load("busline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Service != "billing-service" || cfg.Transport.Kind != "memory" {
		t.Errorf("service %q kind %q", cfg.Service, cfg.Transport.Kind)
	}
}
