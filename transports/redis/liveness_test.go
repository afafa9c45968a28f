package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports/redis"
)

// A consumer process killed mid-handler, with the default configuration (a
// consumer name holding its pid, claim_idle 30s): a new instance gets its
// pending entry within a few seconds, long before claim_idle, and the dead
// consumer is removed from the group once it holds nothing.
func TestDeadPredecessorClaimedFast(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("dead"), uniq("billing")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	pub, _ := tr.Publisher()
	defer pub.Close()
	if err := pub.Publish(topic, message.NewMessage("dead-1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "hang", topic, group)
	if id := c.next(t, "handling ", 15*time.Second); id != "dead-1" {
		t.Fatalf("child handles %s, want dead-1", id)
	}
	c.kill()
	killed := time.Now()

	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	const claimIdle = 30 * time.Second // the default
	select {
	case m := <-msgs:
		m.Ack()
		took := time.Since(killed)
		t.Logf("a dead predecessor's pending entry reached the new instance %v after the kill (claim_idle %v)", took.Round(time.Millisecond), claimIdle)
		if m.UUID != "dead-1" {
			t.Errorf("got %s, want dead-1", m.UUID)
		}
		if took >= claimIdle {
			t.Errorf("took %v: the entry waited claim_idle; the dead consumer should be found by its liveness key", took)
		}
	case <-time.After(claimIdle + 15*time.Second):
		t.Fatal("the entry of the killed consumer was never claimed")
	}
	raw := rawClient(t, redisAddr())
	var names []string
	waitFor(t, 20*time.Second, "the dead consumer removed from the group", func() bool {
		cs, err := raw.XInfoConsumers(ctx, tr.Stream(topic), group).Result()
		if err != nil {
			return false
		}
		names = names[:0]
		for _, c := range cs {
			names = append(names, c.Name)
		}
		return len(cs) == 1
	})
	t.Logf("consumers left in the group: %s", strings.Join(names, ", "))
}
