package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
	"github.com/busline/busline/wire"
)

// queueExists reports whether queue exists on the shared broker.
func queueExists(t *testing.T, conn *amqp.Connection, queue string) (bool, int) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
		return false, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return true, q.Messages
}

// With queue_expires set, a group's queue expires once idle, but its lane
// queues, which may never have a consumer, do not: a poison message
// published after the group queue expired is kept.
func TestLaneQueuesNeverExpire(t *testing.T) {
	requireBroker(t)
	tr := newTransport(t, rabbitmq.Config{QueueExpires: time.Second})
	topic, group := ids("lanes.expires")
	ctx := context.Background()
	for _, tp := range []string{topic, wire.RetryTopic(topic, group), wire.PoisonTopic(topic, group)} {
		if err := tr.ProvisionGroup(ctx, tp, group); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The main queue's expiry shows RabbitMQ applied queue_expires. A
	// passive declare counts as a use and restarts the expiry: poll less
	// often than it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(1500 * time.Millisecond) // polling the broker, slower than queue_expires
		if ok, _ := queueExists(t, conn, rabbitmq.QueueName(topic, group)); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group queue did not expire within 30s of a 1s queue_expires")
		}
	}
	for _, lane := range []string{wire.RetryTopic(topic, group), wire.PoisonTopic(topic, group)} {
		if ok, _ := queueExists(t, conn, rabbitmq.QueueName(lane, group)); !ok {
			t.Errorf("lane queue %s expired with the group queue: its messages would be lost", rabbitmq.QueueName(lane, group))
		}
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	poison := wire.PoisonTopic(topic, group)
	if err := pub.Publish(poison, message.NewMessage("p1", []byte("x"))); err != nil {
		t.Fatalf("poison publish: %v", err)
	}
	if _, n := queueExists(t, conn, rabbitmq.QueueName(poison, group)); n != 1 {
		t.Errorf("poison queue holds %d messages, want 1", n)
	}
}

// A lane queue deleted by an operator: the next lane publish fails (so the
// original would stay unacked) instead of being confirmed into nowhere, and
// the one after it re-declares the queue and is kept.
func TestDeletedLaneQueuePublishFails(t *testing.T) {
	requireBroker(t)
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("lanes.deleted")
	poison := wire.PoisonTopic(topic, group)
	if err := tr.ProvisionGroup(context.Background(), poison, group); err != nil {
		t.Fatal(err)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(poison, message.NewMessage("before", nil)); err != nil {
		t.Fatalf("poison publish: %v", err)
	}
	raw := rawChannel(t)
	if _, err := raw.QueueDelete(rabbitmq.QueueName(poison, group), false, false, false); err != nil {
		t.Fatal(err)
	}
	err = pub.Publish(poison, message.NewMessage("lost?", nil))
	if !errors.Is(err, rabbitmq.ErrUnroutable) {
		t.Fatalf("publish to a deleted lane queue = %v, want ErrUnroutable", err)
	}
	t.Logf("publish to the deleted lane queue: %v", err)
	if err := pub.Publish(poison, message.NewMessage("again", nil)); err != nil {
		t.Fatalf("publish after the failure: %v (the lane queue should be re-declared)", err)
	}
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ok, n := queueExists(t, conn, rabbitmq.QueueName(poison, group)); !ok || n != 1 {
		t.Errorf("re-declared lane queue exists %v with %d messages, want the one published after the failure", ok, n)
	}
}

// logLines records every log message of a transport.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, b.String())
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }
func (l *logLines) has(sub ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		all := true
		for _, s := range sub {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}

// A lane queue deleted while the connection was up is declared again on
// the next connection, before the first publish to the lane: that publish
// is kept.
func TestLaneQueueRedeclaredOnReconnect(t *testing.T) {
	n := startedPrivateNode(t)
	logs := &logLines{}
	tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(n.url()), ReconnectInitial: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, Logger: slog.New(logs)})
	topic, group := ids("lanes.reconnect")
	poison := wire.PoisonTopic(topic, group)
	if err := tr.ProvisionGroup(context.Background(), poison, group); err != nil {
		t.Fatal(err)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(poison, message.NewMessage("before", nil)); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(n.url())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(rabbitmq.QueueName(poison, group), false, false, false); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if _, err := n.ctl("close_all_connections", "test: reconnect"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !logs.has("reconnected", "role=publish") {
		if time.Now().After(deadline) {
			t.Fatal("the publish connection did not reconnect within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling the transport's log
	}
	if err := pub.Publish(poison, message.NewMessage("after", nil)); err != nil {
		t.Fatalf("first lane publish on the new connection: %v", err)
	}
	conn, err = amqp.Dial(n.url())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ok, msgs := queueExists(t, conn, rabbitmq.QueueName(poison, group)); !ok || msgs != 1 {
		t.Errorf("lane queue after reconnecting: exists %v with %d messages, want it re-declared with the message published after", ok, msgs)
	}
}

// Through the bus: a message whose poison lane queue an operator deleted is
// not acked into nowhere: it reaches the (re-declared) poison queue, and
// leaves the group's queue only then.
func TestPoisonAfterLaneQueueDeletedNotLost(t *testing.T) {
	requireBroker(t)
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("lanes.bus")
	b := newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			return bus.Permanent(errors.New("always fails"))
		})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	poisonQueue := rabbitmq.QueueName(wire.PoisonTopic(topic, group), group)
	raw := rawChannel(t)
	if _, err := raw.QueueDelete(poisonQueue, false, false, false); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "poison", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, n := queueExists(t, conn, poisonQueue)
		if ok && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("poison queue exists %v with %d messages 30s after the failure: the poisoned message was lost", ok, n)
		}
		time.Sleep(100 * time.Millisecond) // polling the broker
	}
}

// Concurrent lane publishes share channels: each learns its own fate, a
// returned message failing only its own publish.
func TestConcurrentLanePublishesReturnsTheirOwn(t *testing.T) {
	requireBroker(t)
	tr := newTransport(t, rabbitmq.Config{PublishChannels: 2})
	topic, group := ids("lanes.concurrent")
	kept := wire.PoisonTopic(topic, group)
	if err := tr.ProvisionGroup(context.Background(), kept, group); err != nil {
		t.Fatal(err)
	}
	// A lane no group of this transport provisioned: its exchange exists
	// (the publish declares it) but no queue is bound.
	dropped := wire.PoisonTopic(topic, group+"-none")
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lane := kept
			if i%2 == 1 {
				lane = dropped
			}
			errs[i] = pub.Publish(lane, message.NewMessage(fmt.Sprint(i), nil))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("publish %d to the kept lane: %v", i, err)
		}
		if i%2 == 1 && !errors.Is(err, rabbitmq.ErrUnroutable) {
			t.Errorf("publish %d to the lane with no queue = %v, want ErrUnroutable", i, err)
		}
	}
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, msgs := queueExists(t, conn, rabbitmq.QueueName(kept, group)); msgs != n/2 {
		t.Errorf("kept lane holds %d messages, want %d", msgs, n/2)
	}
}
