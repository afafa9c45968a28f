package rabbitmq_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
	"github.com/busline/busline/wire"
)

// consumers returns how many consumers the node lists on queue.
func (n *privateNode) consumers(t *testing.T, queue string) int {
	t.Helper()
	out, err := n.ctl("list_consumers", "queue_name")
	if err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == queue {
			c++
		}
	}
	return c
}

// A handler slower than the broker's consumer_timeout does not run again
// forever: after TimeoutAttempts deliveries that each ended with RabbitMQ
// closing the channel while the handler ran, the next delivery goes to the
// poison lane with reason timeout, and the handler is not called again.
func TestHandlerOutlastingConsumerTimeoutIsPoisoned(t *testing.T) {
	t.Parallel()
	n := ownPrivateNode(t, nodeOptions{consumerTimeout: 5 * time.Second})
	const attempts = 2
	tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(n.url()), TimeoutAttempts: attempts, ConsumerTimeout: 5 * time.Second})
	topic, group := ids("consumer.timeout")
	queue := rabbitmq.QueueName(topic, group)

	var mu sync.Mutex
	runs := 0
	running := make(chan struct{}, 8)
	release := make(chan struct{}, 8)
	b := newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			mu.Lock()
			runs++
			mu.Unlock()
			running <- struct{}{}
			select { // a handler that ignores its context and outlasts consumer_timeout
			case <-release:
			case <-time.After(5 * time.Minute):
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	poison := subscribe(t, tr, wire.PoisonTopic(topic, group), group)
	if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "slow", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= attempts; run++ {
		select {
		case <-running:
		case <-time.After(2 * time.Minute):
			t.Fatalf("delivery %d never reached the handler", run)
		}
		// The broker checks consumer_timeout about once a minute: wait
		// for it to close the channel (its consumer goes away).
		deadline := time.Now().Add(3 * time.Minute)
		for n.consumers(t, queue) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: the broker did not close the channel within 3 minutes of a 5s consumer_timeout", run)
			}
			time.Sleep(time.Second) // polling the broker
		}
		t.Logf("run %d: the broker closed the channel while the handler ran", run)
		release <- struct{}{}
	}
	select {
	case m := <-poison:
		f, err := wire.ReadFailure(m.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("poison lane: reason %s, attempts %d, error %q", f.Reason, f.Attempts, f.Error)
		if f.Reason != wire.ReasonTimeout || f.Attempts != attempts || f.Group != group || f.Topic != topic {
			t.Errorf("poison record %+v, want reason timeout after %d attempts in group %s of %s", f, attempts, group, topic)
		}
		m.Ack()
	case <-running:
		t.Fatalf("the handler ran again after %d deliveries had outlasted consumer_timeout", attempts)
	case <-time.After(2 * time.Minute):
		t.Fatal("the message did not reach the poison lane")
	}
	// Once poisoned, it is gone from the group's queue: nothing runs it
	// again (a marker published after it is handled, and nothing before).
	if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "marker", Seq: 2}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-running:
		release <- struct{}{}
	case <-time.After(time.Minute):
		t.Fatal("the marker was not handled")
	}
	mu.Lock()
	defer mu.Unlock()
	if runs != attempts+1 {
		t.Errorf("handler ran %d times, want %d for the slow message and 1 for the marker", runs, attempts)
	}
}
