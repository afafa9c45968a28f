package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/redis"
)

// TestConsumeConcurrent: a subscriber is a transports.ConcurrentConsumer.
// It hands out messages in stream order with at most limit unsettled,
// settles them in any order (every ack reaches Redis), delivers a nacked
// one again before any later one, and once ctx is done waits for the
// messages in flight before done is closed; after Close, what was
// unsettled is handed back to the group.
func TestConsumeConcurrent(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("concurrent"), uniq("billing")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx := context.Background()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	pub, _ := tr.Publisher()
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := pub.Publish(topic, message.NewMessage(fmt.Sprintf("m%02d", i), []byte("x"))); err != nil {
				t.Fatal(err)
			}
		}
	}
	const n, limit = 20, 5
	publish(0, n)
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	c, ok := sub.(transports.ConcurrentConsumer)
	if !ok {
		t.Fatalf("the redis subscriber (%T) is no transports.ConcurrentConsumer", sub)
	}
	got := make(chan *message.Message, 2*n)
	handle := func(m *message.Message) { got <- m }
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	done, err := c.ConsumeConcurrent(cctx, topic, limit, handle)
	if err != nil {
		t.Fatal(err)
	}
	next := 0 // the index of the next message expected in stream order
	take := func(want ...string) []*message.Message {
		t.Helper()
		var ms []*message.Message
		for _, id := range want {
			select {
			case m := <-got:
				if m.UUID != id {
					t.Fatalf("got %s, want %s", m.UUID, id)
				}
				ms = append(ms, m)
			case <-time.After(10 * time.Second):
				t.Fatalf("timed out waiting for %s", id)
			}
		}
		return ms
	}
	inOrder := func(k int) []*message.Message {
		t.Helper()
		ids := make([]string, k)
		for i := range ids {
			ids[i] = fmt.Sprintf("m%02d", next+i)
		}
		next += k
		return take(ids...)
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case m := <-got:
			t.Fatalf("%s: got %s", what, m.UUID)
		case <-time.After(300 * time.Millisecond):
		}
	}
	settleReversed := func(ms []*message.Message) {
		for i := len(ms) - 1; i >= 0; i-- {
			ms[i].Ack()
		}
	}

	batch := inOrder(limit)
	quiet(fmt.Sprintf("a message beyond the limit of %d unsettled", limit))
	settleReversed(batch)

	batch = inOrder(limit) // m05..m09
	batch[1].Nack()
	again := take(batch[1].UUID) // before m10, though a slot is free
	again[0].Ack()
	settleReversed(append(batch[:1], batch[2:]...))
	for next < n {
		settleReversed(inOrder(limit))
	}
	raw := rawClient(t, redisAddr())
	waitFor(t, 10*time.Second, "every ack, given in any order, to reach Redis", func() bool {
		p, err := raw.XPending(ctx, tr.Stream(topic), group).Result()
		return err == nil && p.Count == 0
	})

	// ctx done: no new call, but done waits for the message in flight.
	publish(n, n+1)
	inFlight := inOrder(1)[0]
	stop()
	select {
	case <-done:
		t.Fatal("done closed with a message unsettled")
	case <-time.After(300 * time.Millisecond):
	}
	inFlight.Ack()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("done not closed once the last message was settled")
	}

	// Close: the unsettled message is handed back, and another consumer
	// of the group takes it at once.
	publish(n+1, n+2)
	sub2, _ := tr.Subscriber(group)
	done2, err := sub2.(transports.ConcurrentConsumer).ConsumeConcurrent(ctx, topic, limit, handle)
	if err != nil {
		t.Fatal(err)
	}
	take(fmt.Sprintf("m%02d", n+1)) // left unsettled
	if err := sub2.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done2:
	case <-time.After(10 * time.Second):
		t.Fatal("done not closed after Close")
	}
	sub3, _ := tr.Subscriber(group)
	defer sub3.Close()
	msgs, err := sub3.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.UUID != fmt.Sprintf("m%02d", n+1) {
			t.Errorf("after Close, got %s, want the unsettled m%02d", m.UUID, n+1)
		}
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the message unsettled at Close was not handed back")
	}
}
