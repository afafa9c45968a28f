package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports/kafka"
)

// TestRebalanceChurn: 6 partitions, 10,000 keyed events, the group's
// consumers go 2 → 3 → 2 during the run. Nothing is lost, each key's events
// are first handled in publish order, and duplicates are counted.
func TestRebalanceChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 events through rebalances; skipped with -short")
	}
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	cfg.Partitions = 6
	topic, group := unique("churn"), unique("churners")
	const n, keys = 10000, 50

	var (
		mu       sync.Mutex
		next     = map[string]int{} // key → next sequence never handled before
		handled  = map[string]int{} // uuid → handlings
		disorder []string
		total    atomic.Int64
	)
	record := func(m *message.Message) {
		key := m.Metadata.Get(kafka.PartitionKeyHeader)
		seq, _ := strconv.Atoi(m.Metadata.Get("seq"))
		mu.Lock()
		handled[m.UUID]++
		if handled[m.UUID] == 1 {
			if seq != next[key] && len(disorder) < 5 {
				disorder = append(disorder, fmt.Sprintf("key %s: event %d first handled when %d was due", key, seq, next[key]))
			}
			next[key] = seq + 1
		}
		mu.Unlock()
		total.Add(1)
	}
	type consumer struct {
		tr     *kafka.Transport
		cancel context.CancelFunc
		done   chan struct{}
		count  atomic.Int64
	}
	start := func() *consumer {
		tr := open(t, cfg)
		sub, err := tr.Subscriber(group)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		msgs, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		cs := &consumer{tr: tr, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(cs.done)
			for m := range msgs {
				record(m)
				cs.count.Add(1)
				time.Sleep(200 * time.Microsecond) // a handler doing some work
				m.Ack()
			}
		}()
		t.Cleanup(func() {
			cancel()
			_ = sub.Close()
			<-cs.done
		})
		return cs
	}

	pubTr := open(t, cfg)
	if err := pubTr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	a, b := start(), start()
	pub, err := pubTr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	go func() {
		seqs := map[string]int{}
		for i := 0; i < n; i += 100 {
			batch := make([]*message.Message, 0, 100)
			for j := i; j < i+100; j++ {
				key := fmt.Sprintf("k%02d", j%keys)
				m := message.NewMessage(fmt.Sprintf("e-%d", j), []byte("{}"))
				m.Metadata.Set(kafka.PartitionKeyHeader, key)
				m.Metadata.Set("seq", strconv.Itoa(seqs[key]))
				seqs[key]++
				batch = append(batch, m)
			}
			if err := pub.Publish(topic, batch...); err != nil {
				t.Errorf("publish batch %d: %v", i/100, err)
				return
			}
		}
	}()

	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(handled)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; %d distinct events handled", what, distinct())
			}
			time.Sleep(20 * time.Millisecond) // polling counters
		}
	}
	waitUntil("2,000 events", func() bool { return distinct() >= 2000 })
	third := start()
	waitUntil("the third consumer to take work", func() bool { return third.count.Load() >= 300 })
	at3 := distinct()
	a.cancel()
	<-a.done
	_ = a.tr.Close()
	atStop := distinct()
	waitUntil("all 10,000 events", func() bool { return distinct() >= n })

	mu.Lock()
	defer mu.Unlock()
	dups := int(total.Load()) - len(handled)
	t.Logf("%d events, 6 partitions, consumers 2→3 (at %d handled) →2 (at %d): %d handled, 0 lost, %d duplicates; per consumer %d/%d/%d",
		n, at3, atStop, len(handled), dups, a.count.Load(), b.count.Load(), third.count.Load())
	if atStop >= n {
		t.Errorf("the run ended before the churn: the test proves nothing")
	}
	for _, d := range disorder {
		t.Error(d)
	}
	if dups > n/10 {
		t.Errorf("%d duplicates, want at most %d", dups, n/10)
	}
}
