package rabbitmq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports/rabbitmq"
)

// Delayed publishes reach every group of the topic, none before its delay,
// whatever other delays wait at the same time; the delay levels' headers
// are gone from the delivered message.
func TestPublishDelayedReachesEveryGroup(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("delay.groups")
	groups := []string{group + "-a", group + "-b"}
	subs := map[string]<-chan *message.Message{}
	for _, g := range groups {
		subs[g] = subscribe(t, tr, topic, g)
	}
	delays := []time.Duration{2500 * time.Millisecond, 0, 10 * time.Millisecond, time.Second, 1234 * time.Millisecond, time.Hour}
	sent := map[string]time.Time{}
	for i, d := range delays {
		id := fmt.Sprintf("m%d", i)
		m := message.NewMessage(id, []byte(id))
		m.Metadata.Set("k", "v")
		sent[id] = time.Now()
		if err := tr.PublishDelayed(context.Background(), topic, d, m); err != nil {
			t.Fatalf("PublishDelayed %v: %v", d, err)
		}
	}
	type arrival struct {
		m  *message.Message
		at time.Time
	}
	got := map[string]chan arrival{}
	for _, g := range groups {
		in, out := subs[g], make(chan arrival, len(delays))
		got[g] = out
		go func() {
			for m := range in {
				out <- arrival{m, time.Now()}
				m.Ack()
			}
		}()
	}
	for _, g := range groups {
		for range len(delays) - 1 { // all but the hour
			var a arrival
			select {
			case a = <-got[g]:
			case <-time.After(30 * time.Second):
				t.Fatalf("group %s: a delayed message did not arrive within 30s", g)
			}
			m := a.m
			var i int
			_, _ = fmt.Sscanf(m.UUID, "m%d", &i)
			after := a.at.Sub(sent[m.UUID])
			if after < delays[i] {
				t.Errorf("group %s: %s delivered %v after publishing, before its %v delay", g, m.UUID, after, delays[i])
			}
			t.Logf("group %s: %s (delay %v) delivered after %v: %v late", g, m.UUID, delays[i], after, after-delays[i])
			for _, h := range []string{"busline_rabbitmq_delay_to", "x-death", "x-first-death-queue"} {
				if _, ok := m.Metadata[h]; ok {
					t.Errorf("%s carries the delay levels' header %s", m.UUID, h)
				}
			}
			if m.Metadata.Get("k") != "v" {
				t.Errorf("%s lost its metadata: %v", m.UUID, m.Metadata)
			}
		}
	}
	if f := tr.Features(); !f.NativeDelay || f.MaxDelay != rabbitmq.MaxDelay {
		t.Errorf("Features() = %+v", f)
	}
	if err := tr.PublishDelayed(context.Background(), topic, rabbitmq.MaxDelay+time.Second, message.NewMessage("too-long", nil)); err == nil {
		t.Error("a delay past MaxDelay was accepted")
	}
}

// With queue_type quorum the delay levels are quorum queues with
// at-least-once dead-lettering, of their own names: a delayed message goes
// through them and arrives once due.
func TestPublishDelayedQuorum(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{QueueType: rabbitmq.QueueQuorum})
	topic, group := ids("delay.quorum")
	msgs := subscribe(t, tr, topic, group)
	const d = 1500 * time.Millisecond
	start := time.Now()
	if err := tr.PublishDelayed(context.Background(), topic, d, message.NewMessage("q1", []byte("q"))); err != nil {
		t.Fatalf("PublishDelayed: %v", err)
	}
	m := receive(t, msgs, 30*time.Second)
	after := time.Since(start)
	m.Ack()
	if after < d {
		t.Errorf("delivered %v after publishing, before its %v delay", after, d)
	}
	t.Logf("through quorum delay levels (%s…): %v for a %v delay", rabbitmq.DelayLevelName(rabbitmq.QueueQuorum, 0), after, d)
	for _, h := range []string{"busline_rabbitmq_delay_to", "x-death"} {
		if _, ok := m.Metadata[h]; ok {
			t.Errorf("the delay levels' header %s leaked: %v", h, m.Metadata)
		}
	}
}
