package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/transports/transporttest"
	"github.com/busline/busline/wire"
)

// max_len trims the main stream only: 8 events poisoned with max_len 4
// (exact) leave all 8 on the poison lane, while the main stream is cut to 4.
func TestTrimSparesLanes(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{MaxLen: 4, ExactTrim: true})
	topic, group := uniq("trim"), uniq("billing")
	b, err := bus.New(tr, bus.Config{Service: "redistest", Logger: quietLogger(), Topics: map[string]string{order{}.EventName(): topic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropStreams(tr, topic) })
	s := newSeen()
	err = bus.Subscribe(b, group, func(_ context.Context, o order) error {
		s.add(o.Seq)
		return bus.Permanent(errors.New("always fails"))
	})
	if err != nil {
		t.Fatal(err)
	}
	transporttest.Start(t, b)
	raw := rawClient(t, redisAddr())
	ctx := context.Background()
	poison := tr.Stream(wire.PoisonTopic(topic, group))
	const n = 8
	for i := range n {
		if err := bus.Publish(ctx, b, order{Seq: i}); err != nil {
			t.Fatal(err)
		}
		// One at a time, so that trimming the main stream never cuts an
		// entry the group has not read yet.
		waitFor(t, 10*time.Second, "event handled and acked", func() bool {
			p, err := raw.XPending(ctx, tr.Stream(topic), group).Result()
			return s.has(i) && err == nil && p.Count == 0
		})
	}
	if l, _ := raw.XLen(ctx, poison).Result(); l != n {
		t.Errorf("poison lane holds %d entries, want all %d (max_len must not trim lanes)", l, n)
	}
	if l, _ := raw.XLen(ctx, tr.Stream(topic)).Result(); l != 4 {
		t.Errorf("main stream holds %d entries, want 4 (max_len 4, exact)", l)
	}
}
