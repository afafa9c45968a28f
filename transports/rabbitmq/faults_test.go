package rabbitmq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports/rabbitmq"
)

// rawChannel opens a plain amqp091 channel on the shared broker, the way a
// client that is not busline would.
func rawChannel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// ids returns a topic and group of the test's own.
func ids(prefix string) (topic, group string) {
	id := uuid.NewString()[:8]
	return prefix + "." + id, "g-" + id
}

// subscribe provisions and subscribes group on topic; the subscription
// ends with the test.
func subscribe(t *testing.T, tr *rabbitmq.Transport, topic, group string) <-chan *message.Message {
	t.Helper()
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return msgs
}

func receive(t *testing.T, msgs <-chan *message.Message, within time.Duration) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(within):
		t.Fatalf("no message within %v", within)
		return nil
	}
}

func expectNone(t *testing.T, msgs <-chan *message.Message, within time.Duration) {
	t.Helper()
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message %q payload %q metadata %v", m.UUID, m.Payload, m.Metadata)
	case <-time.After(within):
	}
}

// A message with headers that are not strings (numbers, booleans, tables,
// arrays, timestamps, as another client may set) is handled once, with the
// headers as text, and never nack-looped.
func TestNonStringHeadersDelivered(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("faults.headers")
	msgs := subscribe(t, tr, topic, group)
	raw := rawChannel(t)
	err := raw.PublishWithContext(context.Background(), rabbitmq.ExchangeName(topic), "", false, false, amqp.Publishing{
		Body: []byte(`{"n":1}`),
		Headers: amqp.Table{
			"ce_id":     "other-1",
			"count":     int32(7),
			"big":       int64(1) << 40,
			"ratio":     1.5,
			"flag":      true,
			"when":      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			"bytes":     []byte("raw"),
			"nested":    amqp.Table{"a": int32(1), "b": "two"},
			"list":      []any{"x", int32(2)},
			"x-retries": int16(3),
		},
		ContentType: "application/json",
	})
	if err != nil {
		t.Fatalf("raw publish: %v", err)
	}
	m := receive(t, msgs, 10*time.Second)
	want := map[string]string{
		"count": "7", "big": "1099511627776", "ratio": "1.5", "flag": "true",
		"when": "2026-01-02T03:04:05Z", "bytes": "raw", "nested": `{"a":1,"b":"two"}`,
		"list": `["x",2]`, "x-retries": "3", "content-type": "application/json",
	}
	for k, v := range want {
		if got := m.Metadata.Get(k); got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	if m.UUID != "other-1" {
		t.Errorf("UUID = %q, want the ce_id other-1", m.UUID)
	}
	m.Ack()
	expectNone(t, msgs, 500*time.Millisecond)
}

// A message dead-lettered into a group's queue carries RabbitMQ's x-death
// table: it is handled, with x-death as JSON.
func TestDeadLetteredMessageDelivered(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("faults.xdeath")
	msgs := subscribe(t, tr, topic, group)
	raw := rawChannel(t)
	src := "busline-test-dlx-src-" + uuid.NewString()[:8]
	if _, err := raw.QueueDeclare(src, false, true, false, false, amqp.Table{
		"x-message-ttl":          int32(1),
		"x-dead-letter-exchange": rabbitmq.ExchangeName(topic),
	}); err != nil {
		t.Fatalf("declare dead-letter source: %v", err)
	}
	t.Cleanup(func() { _, _ = raw.QueueDelete(src, false, false, false) })
	if err := raw.PublishWithContext(context.Background(), "", src, false, false, amqp.Publishing{Body: []byte("expired")}); err != nil {
		t.Fatalf("raw publish: %v", err)
	}
	m := receive(t, msgs, 10*time.Second)
	xd := m.Metadata.Get("x-death")
	if !strings.Contains(xd, `"reason":"expired"`) || !strings.Contains(xd, src) {
		t.Errorf("x-death = %q, want the JSON of the dead-lettering record", xd)
	}
	m.Ack()
	expectNone(t, msgs, 500*time.Millisecond)
}

// Quorum queues add x-delivery-count (a number) on redelivery: the
// redelivered message is handled.
func TestQuorumRedeliveryHandled(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{QueueType: rabbitmq.QueueQuorum, NackDelay: 10 * time.Millisecond})
	topic, group := ids("faults.quorum")
	msgs := subscribe(t, tr, topic, group)
	t.Cleanup(func() { _, _ = rawChannel(t).QueueDelete(rabbitmq.QueueName(topic, group), false, false, false) })
	pub, _ := tr.Publisher()
	if err := pub.Publish(topic, message.NewMessage("q-1", []byte("x"))); err != nil {
		t.Fatalf("publish: %v", err)
	}
	receive(t, msgs, 10*time.Second).Nack()
	m := receive(t, msgs, 10*time.Second)
	if m.UUID != "q-1" || m.Metadata.Get("x-delivery-count") != "1" {
		t.Errorf("redelivered %q with x-delivery-count %q, want q-1 with 1", m.UUID, m.Metadata.Get("x-delivery-count"))
	}
	m.Ack()
	expectNone(t, msgs, 300*time.Millisecond)
}

// Deleting a group's queue under its consumer delivers no empty phantom
// message; the consumer re-declares the queue and goes on.
func TestDeletedQueueNoPhantom(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{ReconnectInitial: 50 * time.Millisecond})
	topic, group := ids("faults.phantom")
	msgs := subscribe(t, tr, topic, group)
	raw := rawChannel(t)
	queue := rabbitmq.QueueName(topic, group)
	if _, err := raw.QueueDelete(queue, false, false, false); err != nil {
		t.Fatalf("delete queue: %v", err)
	}
	expectNone(t, msgs, time.Second)
	// Publish until the re-declared queue gets one: the consumer starts over
	// after its backoff.
	pub, _ := tr.Publisher()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := pub.Publish(topic, message.NewMessage("after-delete", []byte("x"))); err != nil {
			t.Fatalf("publish: %v", err)
		}
		select {
		case m := <-msgs:
			if m.UUID != "after-delete" || string(m.Payload) != "x" {
				t.Fatalf("got %q payload %q, want the message published after the delete", m.UUID, m.Payload)
			}
			m.Ack()
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the consumer did not resume after its queue was deleted")
		}
	}
}

// A message nacked again and again is redelivered with a growing delay,
// not in a hot loop.
func TestNackNoHotLoop(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{NackDelay: 100 * time.Millisecond, NackDelayMax: time.Second})
	topic, group := ids("faults.nack")
	msgs := subscribe(t, tr, topic, group)
	pub, _ := tr.Publisher()
	if err := pub.Publish(topic, message.NewMessage("nacked", []byte("x"))); err != nil {
		t.Fatalf("publish: %v", err)
	}
	const window = 2 * time.Second
	deliveries := 0
	end := time.After(window)
loop:
	for {
		select {
		case m := <-msgs:
			deliveries++
			m.Nack()
		case <-end:
			break loop
		}
	}
	// 100ms, 200ms, 400ms, 800ms: about 5 deliveries in 2s.
	if deliveries < 2 || deliveries > 8 {
		t.Errorf("%d deliveries of one nacked message in %v, want 2..8 (delays doubling from 100ms)", deliveries, window)
	}
	t.Logf("%d deliveries in %v", deliveries, window)
	m := receive(t, msgs, 5*time.Second)
	m.Ack()
}

// Deleting a topic's exchange under a publisher costs at most one failed
// Publish: the next one declares the exchange again.
func TestDeletedExchangeRedeclared(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("faults.exchange")
	msgs := subscribe(t, tr, topic, group)
	pub, _ := tr.Publisher()
	if err := pub.Publish(topic, message.NewMessage("before", []byte("x"))); err != nil {
		t.Fatalf("publish: %v", err)
	}
	receive(t, msgs, 10*time.Second).Ack()
	if err := rawChannel(t).ExchangeDelete(rabbitmq.ExchangeName(topic), false, false); err != nil {
		t.Fatalf("delete exchange: %v", err)
	}
	failed := 0
	for i := range 3 {
		if err := pub.Publish(topic, message.NewMessage("after", []byte("x"))); err != nil {
			failed++
			t.Logf("publish %d after the delete: %v", i, err)
			continue
		}
		break
	}
	if failed > 1 {
		t.Fatalf("%d publishes failed after the exchange was deleted, want at most 1", failed)
	}
	// The queue lost its binding with the exchange: bind it again, as the
	// consumer does when it starts over, and publish once more.
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatalf("provision: %v", err)
	}
	if err := pub.Publish(topic, message.NewMessage("rebound", []byte("x"))); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if m := receive(t, msgs, 10*time.Second); m.UUID != "rebound" {
		t.Errorf("got %q, want rebound", m.UUID)
	}
}
