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

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// warnings counts the transport's warnings.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }
func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// delayLevelStats sums the messages, unacked messages and consumers of the
// node's delay level queues.
func (n *privateNode) delayLevelStats(t *testing.T) (messages, unacked, consumers int) {
	t.Helper()
	out, err := n.ctl("list_queues", "name", "messages", "messages_unacknowledged", "consumers")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || !strings.HasPrefix(f[0], "busline.delay.") {
			continue
		}
		var m, u, c int
		_, _ = fmt.Sscan(f[1], &m)
		_, _ = fmt.Sscan(f[2], &u)
		_, _ = fmt.Sscan(f[3], &c)
		messages, unacked, consumers = messages+m, unacked+u, consumers+c
	}
	return messages, unacked, consumers
}

// A 45-minute tier on a node whose consumer_timeout is 60s: the waiting
// message is held by no consumer, so when consumer_timeout has demonstrably
// fired on this node (it closes a control channel that holds an unacked
// delivery), the message sits in a delay level with no consumer and
// nothing unacked, busline's channels are still open, and a short delay on
// the same node is delivered. (The 45 minutes themselves are not waited
// out: that a level's TTL elapses and dead-letters on is what the short
// delay shows.)
func TestLongTierHoldsNoConsumer(t *testing.T) {
	t.Parallel()
	const consumerTimeout = 60 * time.Second
	n := ownPrivateNode(t, nodeOptions{consumerTimeout: consumerTimeout})
	w := &warnings{}
	tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(n.url()), Logger: slog.New(w)})
	topic, group := ids("delay.longtier")

	// The control: a plain consumer that never acks its delivery.
	conn, err := amqp.Dial(n.url())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctl, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ctl.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.PublishWithContext(context.Background(), "", q.Name, false, false, amqp.Publishing{Body: []byte("held")}); err != nil {
		t.Fatal(err)
	}
	ctlClosed := ctl.NotifyClose(make(chan *amqp.Error, 1))
	if _, err := ctl.Consume(q.Name, "", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	heldSince := time.Now()

	var mu sync.Mutex
	handled := map[int]time.Time{}
	var failedAt time.Time
	b := newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			mu.Lock()
			defer mu.Unlock()
			if e.Seq == 0 && failedAt.IsZero() {
				failedAt = time.Now()
				return errors.New("first delivery fails: into the 45-minute tier")
			}
			handled[e.Seq] = time.Now()
			return nil
		}, bus.WithRetry(middleware.RetryPolicy{Attempts: 1}), bus.WithDelays(45*time.Minute))
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "long", Seq: 0}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, _, _ := n.delayLevelStats(t); m == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed message did not reach a delay level within 30s")
		}
		time.Sleep(100 * time.Millisecond) // polling the broker
	}

	select {
	case e := <-ctlClosed:
		t.Logf("consumer_timeout fired %v after the control's delivery: %v", time.Since(heldSince).Round(time.Second), e)
		if e == nil || e.Code != amqp.PreconditionFailed {
			t.Fatalf("control channel closed by %v, want consumer_timeout's PRECONDITION_FAILED", e)
		}
	case <-time.After(consumerTimeout + 3*time.Minute):
		t.Fatal("consumer_timeout never closed the control channel: the node does not enforce it, so this test proves nothing")
	}
	msgs, unacked, consumers := n.delayLevelStats(t)
	t.Logf("after consumer_timeout: delay levels hold %d messages, %d unacked, %d consumers", msgs, unacked, consumers)
	if msgs != 1 || unacked != 0 || consumers != 0 {
		t.Errorf("delay levels: %d messages, %d unacked, %d consumers; want the waiting message, held by no consumer", msgs, unacked, consumers)
	}
	for _, m := range w.list() {
		if strings.Contains(m, "consumer stopped") || strings.Contains(m, "connection lost") {
			t.Errorf("busline's consumer was interrupted while the message waited: %q", m)
		}
	}
	// The consumer still consumes, and a short delay on this node arrives
	// once due.
	start := time.Now()
	if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "long", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	const short = 2 * time.Second
	if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "long", Seq: 2}, bus.WithDelay(short)); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		t1, ok1 := handled[1]
		t2, ok2 := handled[2]
		_, early := handled[0]
		mu.Unlock()
		if early {
			t.Fatal("the 45-minute message was handled early")
		}
		if ok1 && ok2 {
			t.Logf("after consumer_timeout: an event handled %v after publishing, a %v scheduled one %v after", t1.Sub(start), short, t2.Sub(start))
			if t2.Sub(start) < short {
				t.Errorf("the scheduled event arrived %v after publishing, before its %v delay", t2.Sub(start), short)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after consumer_timeout: handled %v within 30s, want events 1 and 2", handled)
		}
		time.Sleep(50 * time.Millisecond) // polling the handler's record
	}
}
