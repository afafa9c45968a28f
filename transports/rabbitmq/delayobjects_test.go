package rabbitmq_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// objects lists the node's queues, exchanges and bindings whose names
// contain one of the substrings.
func (n *privateNode) objects(t *testing.T, subs ...string) (queues, exchanges, bindings []string) {
	t.Helper()
	match := func(s string) bool {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				return true
			}
		}
		return false
	}
	list := func(args ...string) []string {
		out, err := n.ctl(args...)
		if err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l = strings.TrimSpace(l); l != "" && match(l) {
				r = append(r, l)
			}
		}
		return r
	}
	return list("list_queues", "name"), list("list_exchanges", "name"), list("list_bindings", "source_name", "destination_name", "routing_key")
}

// The delays create a fixed set of broker objects: a group with three
// tiers, its messages waiting in all three, and scheduled publishes of a
// hundred different delays add no queue or exchange beyond the group's own
// queues and the shared delay levels, and one binding per destination.
func TestDelayObjectsBounded(t *testing.T) {
	n := startedPrivateNode(t)
	tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(n.url())})
	topic, group := ids("delay.objects")
	var mu sync.Mutex
	failures := 0
	tiers := []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute}
	b := newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			if e.Seq >= 1000 {
				return nil // scheduled
			}
			mu.Lock()
			failures++
			mu.Unlock()
			return errors.New("always fails")
		}, bus.WithRetry(middleware.RetryPolicy{Attempts: 1}), bus.WithDelays(tiers...))
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	for i := range 3 {
		if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "objects", Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "objects", Seq: 1000 + i}, bus.WithDelay(time.Duration(i+1)*1234*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		f := failures
		mu.Unlock()
		if f >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d first failures within 30s, want 3", f)
		}
		time.Sleep(50 * time.Millisecond) // polling the handler's count
	}
	queues, exchanges, bindings := n.objects(t, topic, "busline.delay")
	t.Logf("a group with %d tiers, 3 messages in tier 1 and 100 scheduled delays: %d queues, %d exchanges, %d bindings", len(tiers), len(queues), len(exchanges), len(bindings))
	var own, levels, levelExchanges, deliveryBindings int
	for _, q := range queues {
		if strings.Contains(q, topic) {
			own++
		} else {
			levels++
		}
	}
	for _, e := range exchanges {
		if strings.HasPrefix(e, "busline.delay.") && e != rabbitmq.DelayDeliveryExchange {
			levelExchanges++
		}
	}
	for _, bd := range bindings {
		if strings.HasPrefix(bd, rabbitmq.DelayDeliveryExchange+"\t") && strings.Contains(bd, topic) {
			deliveryBindings++
		}
	}
	t.Logf("the group's queues: %d (main, retry, poison); delay level queues: %d, level exchanges: %d; delivery bindings to this topic's exchanges: %d", own, levels, levelExchanges, deliveryBindings)
	if own != 3 || levels != rabbitmq.DelayLevels || levelExchanges != rabbitmq.DelayLevels {
		t.Errorf("queues %v, exchanges %v: want the group's 3 queues and %d levels", queues, exchanges, rabbitmq.DelayLevels)
	}
	if deliveryBindings != 2 { // the retry lane's exchange and the topic's, for scheduled publishes
		t.Errorf("%d bindings from %s to this topic's exchanges, want 2 (retry lane, topic): %v", deliveryBindings, rabbitmq.DelayDeliveryExchange, bindings)
	}
}
