package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/redis"
)

// A service restarted while Redis is at maxmemory (policy noeviction)
// starts: the consumer groups of its topic and lanes exist, so Run needs no
// write Redis refuses, and its consumers drain the backlog. A publish
// meanwhile fails with Redis's OOM error, which says nothing was stored.
func TestRunAtMaxMemory(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--maxmemory-policy", "noeviction")
	topic, group := uniq("oom"), uniq("billing")
	const backlog = 200
	ctx := context.Background()

	// The service ran once, so its groups and lanes exist; then a backlog
	// piled up.
	const ttl = 600 * time.Millisecond
	cfg := redis.Config{Addr: srv.addr, Consumer: uniq("oom"), ConsumerTTL: ttl}
	first := open(t, cfg)
	if err := runBus(t, first, topic, group, newSeen()).Close(ctx); err != nil {
		t.Fatal(err)
	}
	publisher := runBus(t, first, topic, group, nil)
	for i := range backlog {
		if err := bus.Publish(ctx, publisher, order{Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawClient(t, srv.addr)
	if err := raw.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil { // a private server: below any used_memory
		t.Fatal(err)
	}
	if err := raw.Set(ctx, "probe", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("SET at maxmemory = %v, want OOM", err)
	}

	// The restarted service starts and drains the backlog.
	tr := open(t, cfg)
	s := newSeen()
	runBus(t, tr, topic, group, s)
	waitFor(t, 20*time.Second, "the backlog drained at maxmemory", func() bool { d, _ := s.counts(); return d == backlog })

	// Its liveness key stays fresh (SET is refused, PEXPIRE is not), so
	// no peer takes it for dead and claims its entries.
	live := "busline:live:" + cfg.Consumer
	tick := time.NewTicker(ttl / 6)
	defer tick.Stop()
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); <-tick.C {
		left, err := raw.PTTL(ctx, live).Result()
		if err != nil || time.Hour-left > ttl {
			t.Fatalf("liveness key %s: PTTL %v (%v): not refreshed for longer than its TTL %v at maxmemory", live, left, err, ttl)
		}
	}

	// Publishing is refused with the OOM error, and nothing was stored.
	err := bus.Publish(ctx, publisher, order{Seq: backlog})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "OOM") || !strings.Contains(err.Error(), "maxmemory") {
		t.Fatalf("Publish at maxmemory = %v, want Redis's OOM error", err)
	}
	if errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("Publish at maxmemory = %v wraps ErrMaybeSent; Redis refused it, nothing was stored", err)
	}
	if n, err := raw.XLen(ctx, tr.Stream(topic)).Result(); err != nil || n != backlog {
		t.Errorf("stream holds %d entries (%v), want the %d of the backlog", n, err, backlog)
	}
}
