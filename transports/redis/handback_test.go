package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
)

// TestCloseHandsBackUnreadEntries: a subscription reads a whole batch ahead
// of its handler. When it closes, the entries it never finished must go to
// the next consumer of the group at once, not after claim_idle (30s here).
func TestCloseHandsBackUnreadEntries(t *testing.T) {
	t.Parallel()
	topic, group := uniq("handback"), "billing"
	first := open(t, redis.Config{Consumer: uniq("first"), ClaimIdle: 30 * time.Second})
	const n = 20

	b, err := bus.New(first, bus.Config{Service: "redistest", Logger: quietLogger(), Topics: map[string]string{order{}.EventName(): topic}, ShutdownGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropStreams(first, topic) })
	started := make(chan struct{}, n)
	err = bus.Subscribe(b, group, func(ctx context.Context, o order) error {
		started <- struct{}{}
		<-ctx.Done() // never finishes: left for redelivery by Close
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	for i := range n {
		if err := bus.Publish(context.Background(), b, order{Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first instance never started handling")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	second := open(t, redis.Config{Consumer: uniq("second"), ClaimIdle: 30 * time.Second})
	s := newSeen()
	begin := time.Now()
	runBus(t, second, topic, group, s)
	waitFor(t, 10*time.Second, fmtSeqs(n), func() bool { d, _ := s.counts(); return d == n })
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("the next consumer got the entries after %v; want well under claim_idle (30s)", took)
	}
	t.Logf("next consumer handled all %d entries %v after the first closed", n, time.Since(begin))
}

func TestRemoveGroup(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic := uniq("remove")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx := context.Background()
	if err := tr.ProvisionGroup(ctx, topic, "tail-1"); err != nil {
		t.Fatal(err)
	}
	if err := tr.RemoveGroup(ctx, topic, "tail-1"); err != nil {
		t.Fatalf("RemoveGroup: %v", err)
	}
	groups, err := tr.Client().XInfoGroups(ctx, tr.Stream(topic)).Result()
	if err != nil || len(groups) != 0 {
		t.Errorf("groups after RemoveGroup: %v, %v; want none", groups, err)
	}
	if err := tr.RemoveGroup(ctx, topic, "never-existed"); err != nil {
		t.Errorf("RemoveGroup of a missing group: %v, want nil", err)
	}
	if err := tr.RemoveGroup(ctx, uniq("no-stream"), "g"); err != nil {
		t.Errorf("RemoveGroup on a missing stream: %v, want nil", err)
	}
}
