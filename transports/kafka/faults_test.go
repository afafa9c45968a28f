package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceFaults injects produce errors that a real broker returns after
// writing the batch (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND):
// the producer retries, and being idempotent, writes nothing twice.
func TestProduceFaults(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic := unique("faults")
	if err := tr.ProvisionGroup(context.Background(), topic, "readers"); err != nil {
		t.Fatal(err)
	}
	var produces atomic.Int64
	h := c.Fault(
		kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut, Count: 25,
			When: func(kmsg.Request) bool { return produces.Add(1)%5 == 0 }},
		kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.NotEnoughReplicasAfterAppend, Count: 15,
			When: func(kmsg.Request) bool { return produces.Load()%7 == 0 }},
	)
	defer h.Remove()

	const publishers, perPublisher = 4, 150
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub, err := tr.Publisher()
			if err != nil {
				errs <- err
				return
			}
			defer pub.Close()
			for i := range perPublisher {
				id := fmt.Sprintf("p%d-%d", p, i)
				if err := pub.Publish(topic, message.NewMessage(id, []byte(id))); err != nil {
					errs <- fmt.Errorf("publish %s: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if h.Hits() == 0 {
		t.Fatal("no produce request was faulted: the test proves nothing")
	}
	const n = publishers * perPublisher
	counts := readAll(t, c.ListenAddrs(), topic, n, 30*time.Second)
	lost, dups := 0, 0
	for p := range publishers {
		for i := range perPublisher {
			switch c := counts[fmt.Sprintf("p%d-%d", p, i)]; {
			case c == 0:
				lost++
			case c > 1:
				dups += c - 1
			}
		}
	}
	t.Logf("%d messages, %d produce requests faulted: %d lost, %d duplicates", n, h.Hits(), lost, dups)
	if lost != 0 || dups != 0 {
		t.Errorf("%d lost, %d duplicates; want 0 and 0 with the idempotent producer", lost, dups)
	}
}
