package rabbitmq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// ConsumeConcurrent hands out up to limit messages at once, even with a
// smaller prefetch, settles them in any order (each ack by its own
// delivery tag: acking the later ones never acks an earlier one still in
// flight), sends acks made after its context ended, and gives the
// messages unsettled when the subscriber closes back to the queue.
func TestConsumeConcurrentSettlesOutOfOrder(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{Prefetch: 8}) // below limit; and batches of 4 acks if they were batched
	topic, group := ids("concurrent.acks")
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	const n, limit = 20, 12
	for i := range n {
		if err := pub.Publish(topic, message.NewMessage(fmt.Sprintf("m%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	cc, ok := sub.(transports.ConcurrentConsumer)
	if !ok {
		t.Fatalf("%T is no transports.ConcurrentConsumer", sub)
	}
	got := make(chan *message.Message, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := cc.ConsumeConcurrent(ctx, topic, limit, func(m *message.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]*message.Message{}
	take := func(count int) {
		t.Helper()
		for range count {
			m := receive(t, got, 10*time.Second)
			held[m.UUID] = m
		}
	}
	take(limit)                              // m0..m11
	expectNone(t, got, 500*time.Millisecond) // limit unsettled: no more handed out
	for i := limit - 1; i >= 1; i-- {        // m11..m1 acked, m0 left unsettled
		held[fmt.Sprintf("m%d", i)].Ack()
	}
	take(n - limit) // m12..m19
	for _, i := range []int{15, 12, 18, 13, 17, 14, 16} {
		held[fmt.Sprintf("m%d", i)].Ack()
	}
	for i := range n {
		if held[fmt.Sprintf("m%d", i)] == nil {
			t.Fatalf("m%d was not handed out; held %v", i, held)
		}
	}
	cancel()
	select {
	case <-done:
		t.Fatal("done closed while m0 and m19 are unsettled")
	case <-time.After(300 * time.Millisecond):
	}
	held["m19"].Ack() // after ctx ended: still reaches the broker
	select {
	case <-done:
		t.Fatal("done closed while m0 is unsettled")
	case <-time.After(300 * time.Millisecond):
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("done not closed after the subscriber closed")
	}

	again := subscribe(t, tr, topic, group)
	if m := receive(t, again, 10*time.Second); m.UUID != "m0" {
		t.Errorf("redelivered %s, want only m0, the one left unsettled", m.UUID)
	} else {
		m.Ack()
	}
	expectNone(t, again, time.Second)
}
