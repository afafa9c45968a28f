package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
)

// TestSlowJoinOutlastsDialTimeout: a second member's JoinGroup is held by
// the coordinator while the first finishes a slow handler in its revoke,
// for longer than dial_timeout. The join is not abandoned (the Sarama-based
// transport used dial_timeout as read timeout and looped on "consumer
// group cannot join … i/o timeout"): the second member gets partitions.
func TestSlowJoinOutlastsDialTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a slow rebalance; skipped with -short")
	}
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	cfg.DialTimeout = time.Second
	cfg.Partitions = 2
	topic, group := unique("slowjoin"), unique("joiners")
	first, second := open(t, cfg), open(t, cfg)
	pub, err := first.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	// One slow message on each partition (murmur2: "21" → 0, "abc" → 1 of
	// 2), so whichever partition moves to the second member has a handler
	// in flight that its revoke waits for.
	for _, key := range []string{"21", "abc"} {
		m := message.NewMessage("slow-"+key, []byte("{}"))
		m.Metadata.Set(kafka.PartitionKeyHeader, key)
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	var slowHeld, secondGot atomic.Int64
	release := make(chan struct{}) // never closed: the handlers hold 3s
	consume := func(tr transports.Transport, consumers int, onMsg func(*message.Message)) {
		sub, err := tr.Subscriber(group)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		for range consumers {
			if _, err := sub.(transports.Consumer).Consume(ctx, topic, func(m *message.Message) { onMsg(m); m.Ack() }); err != nil {
				t.Fatal(err)
			}
		}
	}
	slow := func(m *message.Message) {
		if strings.HasPrefix(m.UUID, "slow-") {
			slowHeld.Add(1)
			select {
			case <-release:
			case <-time.After(3 * time.Second): // longer than dial_timeout
			}
		}
	}
	consume(first, 2, slow)
	for slowHeld.Load() < 2 {
		time.Sleep(20 * time.Millisecond) // polling a flag
	}
	start := time.Now()
	consume(second, 1, func(*message.Message) { secondGot.Add(1) })
	deadline := time.Now().Add(40 * time.Second)
	for i := 0; secondGot.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the second member handled nothing %v after it joined", time.Since(start))
		}
		publish(t, first, topic, fmt.Sprintf("after-%d", i))
		time.Sleep(200 * time.Millisecond) // a message on each partition in turn
	}
	t.Logf("the second member took work %v after joining, past a 3s revoke with dial_timeout %v", time.Since(start).Round(time.Millisecond), cfg.DialTimeout)
	if err := second.Health(context.Background()); err != nil {
		t.Errorf("Health of the second member: %v", err)
	}
}
