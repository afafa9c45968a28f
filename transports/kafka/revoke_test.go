package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
)

// A partition revoked while a consumer is in the middle of a batch of its
// records gets the unhandled rest back, and the consumer goes on consuming:
// here the group rebalances because a second member (another topic of the
// same group) joins while the first message's handler is held.
func TestRevokeMidBatchKeepsConsumer(t *testing.T) {
	tr := open(t, testConfig(brokers(t)))
	id := uuid.NewString()[:8]
	topic, other, group := "revoke-"+id, "revoke-other-"+id, "g-"+id
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publish := func(topic, id string) {
		t.Helper()
		m := message.NewMessage(id, []byte("{}"))
		m.Metadata.Set(kafka.PartitionKeyHeader, "one-key") // one partition, one batch
		if err := pub.Publish(topic, m); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("m%d", i))
		publish(topic, ids[i])
	}

	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	c := sub.(transports.Consumer)
	var (
		mu      sync.Mutex
		handled = map[string]int{}
		changed = make(chan struct{}, 1)
	)
	held, release := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := c.Consume(ctx, topic, func(msg *message.Message) {
		mu.Lock()
		handled[msg.UUID]++
		first := msg.UUID == ids[0] && handled[msg.UUID] == 1
		mu.Unlock()
		if first {
			close(held)
			<-release
		}
		msg.Ack()
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	waitFor := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	waitFor("the first message", held)

	doneOther, err := c.Consume(ctx, other, func(msg *message.Message) { msg.Ack() })
	if err != nil {
		t.Fatalf("Consume %s: %v", other, err)
	}
	time.Sleep(3 * time.Second) // six heartbeats: the first member learns of the rebalance
	close(release)

	allHandled := func(want []string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range want {
			if handled[id] == 0 {
				return false
			}
		}
		return true
	}
	deadline := time.After(30 * time.Second)
	for !allHandled(ids) {
		select {
		case <-changed:
		case <-done:
			t.Fatal("the consumer ended after its partition was revoked")
		case <-deadline:
			mu.Lock()
			t.Fatalf("not every message handled after the rebalance: %v", handled)
		}
	}
	publish(topic, "after")
	for !allHandled([]string{"after"}) {
		select {
		case <-changed:
		case <-done:
			t.Fatal("the consumer ended after its partition was revoked")
		case <-time.After(30 * time.Second):
			t.Fatal("a message published after the rebalance was not handled")
		}
	}
	cancel()
	waitFor("Consume's done", done)
	waitFor("the other Consume's done", doneOther)
}
