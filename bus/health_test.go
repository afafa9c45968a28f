package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/memory"
)

type healthEvent struct{}

func (healthEvent) EventName() string { return "health.checked" }

// sickTransport is a memory transport whose Health reports err.
type sickTransport struct {
	*memory.Transport
	err error
}

func (s sickTransport) Health(context.Context) error { return s.err }

func probe(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthLifecycle(t *testing.T) {
	t.Parallel()
	b, tr := setup(t, bus.Config{})
	if err := bus.Subscribe(b, "billing", func(context.Context, healthEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	h := bus.HealthHandler(b)

	before := b.Health(context.Background())
	if before.Running || before.Ready() || !before.Live() || before.Transport != "memory" {
		t.Errorf("before Run: %+v, want not running, not ready, live, transport memory", before)
	}
	if len(before.Subscriptions) != 1 || before.Subscriptions[0].Joined || before.Subscriptions[0].Group != "billing" {
		t.Errorf("before Run: subscriptions %+v, want billing, not joined", before.Subscriptions)
	}
	if code, body := probe(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]bus failed") {
		t.Errorf("/readyz before Run = %d %q, want 503 naming the bus", code, body)
	}
	if code, _ := probe(t, h, "/livez"); code != http.StatusOK {
		t.Errorf("/livez before Run = %d, want 200", code)
	}

	run(t, b)
	running := b.Health(context.Background())
	if !running.Ready() || !running.Live() {
		t.Errorf("running: %+v, want ready and live", running)
	}
	if s := running.Subscriptions[0]; !s.Joined || !s.Consuming || s.LastErr != nil || s.Topic != "health.checked" {
		t.Errorf("running: subscription %+v, want joined, consuming, no error", s)
	}
	if code, body := probe(t, h, "/readyz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/readyz = %d %q, want 200 ok", code, body)
	}
	code, body := probe(t, h, "/api/readyz?verbose")
	want := "[+]bus ok\n[+]transport memory ok\n[+]subscription health.checked/billing ok\nreadyz check passed\n"
	if code != http.StatusOK || body != want {
		t.Errorf("/api/readyz?verbose = %d %q, want 200 %q", code, body, want)
	}
	if code, _ := probe(t, h, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics = %d, want 404", code)
	}

	// The transport going away ends the subscriptions while the bus runs:
	// not ready, and not live either, since a restart would mend it.
	_ = tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for b.Health(ctx).Live() {
		select {
		case <-ctx.Done():
			t.Fatalf("still live after the transport closed: %+v", b.Health(ctx))
		case <-time.After(5 * time.Millisecond):
		}
	}
	if code, body := probe(t, h, "/livez"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]subscription health.checked/billing failed: not consuming") {
		t.Errorf("/livez after the transport closed = %d %q, want 503 naming the subscription", code, body)
	}
	if code, body := probe(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]transport memory failed: "+memory.ErrClosed.Error()) {
		t.Errorf("/readyz after the transport closed = %d %q, want 503 with the transport's error", code, body)
	}
}

func TestHealthTransportDown(t *testing.T) {
	t.Parallel()
	tr := memory.New(memory.Config{})
	t.Cleanup(func() { _ = tr.Close() })
	down := errors.New("broker unreachable at amqp://guest:xxxxx@127.0.0.1:5672/")
	b, err := bus.New(sickTransport{tr, down}, bus.Config{Service: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	if err := bus.Subscribe(b, "billing", func(context.Context, healthEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	run(t, b)
	h := b.Health(context.Background())
	if !errors.Is(h.TransportErr, down) || h.Ready() || !h.Live() {
		t.Errorf("Health = %+v, want the transport's error, not ready, live", h)
	}
	if code, body := probe(t, bus.HealthHandler(b), "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, down.Error()) {
		t.Errorf("/readyz = %d %q, want 503 with %q", code, body, down)
	}
	if code, _ := probe(t, bus.HealthHandler(b), "/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d, want 200: a broker that is down is no reason to restart", code)
	}
}

func TestSubscriptions(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, bus.Config{Topics: map[string]string{"health.checked": "health.wire"}})
	for _, g := range []string{"shipping", "billing"} {
		if err := bus.Subscribe(b, g, func(context.Context, healthEvent) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	got := b.Subscriptions()
	want := []bus.Subscription{
		{Event: "health.checked", Group: "billing", Topic: "health.wire", Retry: "health.wire.billing.retry", Poison: "health.wire.billing.poison"},
		{Event: "health.checked", Group: "shipping", Topic: "health.wire", Retry: "health.wire.shipping.retry", Poison: "health.wire.shipping.poison"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Subscriptions = %+v, want %+v", got, want)
	}
}
