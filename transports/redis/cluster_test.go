package redis_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/wire"
)

// warnings records the log records at Warn and above.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	w.mu.Lock()
	w.msgs = append(w.msgs, b.String())
	w.mu.Unlock()
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// On a Redis Cluster (one node owning every slot, which checks key slots
// like a larger one), the delayed sets share their stream's slot: delayed
// publishes to a topic and to a lane are moved and delivered, and the
// dead-consumer checks and scripts run, without a warning.
func TestClusterDelays(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "no")
	raw := rawClient(t, srv.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := raw.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "cluster_state:ok", func() bool {
		info, err := raw.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	w := &warnings{}
	tr := open(t, redis.Config{ClusterAddrs: []string{srv.addr}, Logger: slog.New(w)})
	topic, group := uniq("cluster"), uniq("billing")
	lane := wire.RetryTopic(topic, group)
	for _, to := range []string{topic, lane} {
		if err := tr.ProvisionGroup(ctx, to, group); err != nil {
			t.Fatal(err)
		}
	}
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	got := make(chan string, 2)
	for _, to := range []string{topic, lane} {
		msgs, err := sub.Subscribe(ctx, to)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for m := range msgs {
				m.Ack()
				got <- m.UUID
			}
		}()
	}
	for _, to := range []string{topic, lane} {
		if err := tr.PublishDelayed(ctx, to, 200*time.Millisecond, message.NewMessage("to-"+to, []byte("x"))); err != nil {
			t.Fatalf("PublishDelayed to %s on a cluster: %v", to, err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case id := <-got:
			seen[id] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("delivered on a cluster: %v; warnings: %q", seen, w.all())
		}
	}
	// A dead consumer (liveness key last refreshed 10s ago, TTL 300ms) is
	// found and removed: the claim round's commands and scripts ran.
	if err := raw.Do(ctx, "XGROUP", "CREATECONSUMER", tr.Stream(topic), group, "ghost-0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, "busline:live:ghost", "300", time.Hour-10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the dead consumer removed", func() bool {
		cs, err := raw.XInfoConsumers(ctx, tr.Stream(topic), group).Result()
		if err != nil {
			return false
		}
		for _, c := range cs {
			if c.Name == "ghost-0" {
				return false
			}
		}
		return true
	})
	if ws := w.all(); len(ws) > 0 {
		t.Errorf("warnings on a cluster: %q", ws)
	}
}
