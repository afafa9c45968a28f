package config_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	"github.com/busline/busline/transports"
)

type orderPlaced struct {
	ID string `json:"id"`
}

func (orderPlaced) EventName() string { return "orders.placed" }

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busline.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRunsABus(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
service: checkout
shutdown_grace: 2s
topics:
  orders.placed: orders.v1
retry:
  attempts: 2
  backoff: {initial: 1ms, max: 1ms, jitter: 0}
  delays: [1s]
subscriptions:
  billing:
    concurrency: 2
    retry: {attempts: 4, delays: []}
`)
	b, err := config.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got := make(chan bus.Metadata, 1)
	calls := 0
	err = bus.Subscribe(b, "billing", func(ctx context.Context, e orderPlaced) error {
		calls++
		md, _ := bus.MetadataFrom(ctx)
		if md.Attempt < 4 {
			return errors.New("not yet")
		}
		got <- md
		return nil
	}, bus.WithConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if err := bus.Publish(context.Background(), b, orderPlaced{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case md := <-got:
		if md.Source != "checkout" || md.Topic != "orders.v1" || md.Attempt != 4 {
			t.Errorf("source %q topic %q attempt %d; want checkout, orders.v1 and the group's 4 attempts", md.Source, md.Topic, md.Attempt)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("event not handled with the group's retry policy")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	// The bus owned the transport: it is closed with the bus.
	if err := b.Transport().Health(context.Background()); err == nil {
		t.Error("the transport is still open after the bus closed")
	}
}

func TestBusConfig(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `
service: s
retry: {delays: [], backoff: {jitter: 0}}
subscriptions:
  a: {ordered: true, timeout: 3s}
  b: {retry: {delays: [5s]}}
`)
	bc := cfg.BusConfig()
	if bc.Delays == nil || len(bc.Delays) != 0 {
		t.Errorf("global delays %v, want an empty non-nil list (no tiers)", bc.Delays)
	}
	// The bus fills a policy's defaults with SetDefaults: YAML's jitter: 0
	// must stay "none" through it.
	p := bc.Retry
	p.SetDefaults()
	if p.Backoff.Jitter != 0 || p.Backoff.Initial != 100*time.Millisecond {
		t.Errorf("backoff %+v through SetDefaults, want the default backoff without jitter", p.Backoff)
	}
	a, b := bc.Subscriptions["a"], bc.Subscriptions["b"]
	if !a.Ordered || a.Timeout != 3*time.Second || a.Retry == nil || a.Retry.Attempts != 3 {
		t.Errorf("subscription a = %+v", a)
	}
	if len(b.Delays) != 1 || b.Delays[0] != 5*time.Second {
		t.Errorf("subscription b delays %v, want [5s]", b.Delays)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"UnknownKind", "service: s\ntransport: {kind: kafka}\n", []string{"transport.kind kafka", "forgotten import", "transports/kafka"}},
		{"BadSection", "service: s\ntransport:\n  kind: memory\n  memory: {bogus: 1}\n", []string{"busline.yaml:4:12", "bogus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.yaml)
			_, err := config.Open(context.Background(), path)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := config.Open(context.Background(), filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	_, err := config.Open(context.Background(), writeConfig(t, "service: s\ntransport: {kind: nats}\n"))
	if !errors.Is(err, transports.ErrUnknownKind) {
		t.Errorf("unknown kind: %v, want ErrUnknownKind", err)
	}
}
