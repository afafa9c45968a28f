package rabbitmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/rabbitmq"
	"github.com/busline/busline/transports/transporttest"
)

// OrderPlaced is the event of the interop and crash tests.
type OrderPlaced struct {
	Order string `json:"order"`
	Seq   int    `json:"seq"`
}

func (OrderPlaced) EventName() string { return "rabbitmq.test.order_placed" }

// newBus returns a running bus on tr whose OrderPlaced events go to topic;
// it is closed at the end of the test. subscribe registers handlers before
// Run.
func newBus(t *testing.T, tr *rabbitmq.Transport, topic string, subscribe func(b *bus.Bus)) *bus.Bus {
	t.Helper()
	b, err := bus.New(tr, bus.Config{
		Service: "interop-test",
		Logger:  quietLogger(),
		Topics:  map[string]string{OrderPlaced{}.EventName(): topic},
	})
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	if subscribe != nil {
		subscribe(b)
	}
	transporttest.Start(t, b)
	return b
}

// A message a plain AMQP client publishes with CloudEvents headers is
// handled by a typed handler.
func TestInteropPlainClientToBusline(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("interop.in")
	got := make(chan bus.Metadata, 1)
	events := make(chan OrderPlaced, 1)
	newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			md, _ := bus.MetadataFrom(ctx)
			events <- e
			got <- md
			return nil
		})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	raw := rawChannel(t)
	err := raw.PublishWithContext(context.Background(), rabbitmq.ExchangeName(topic), "", false, false, amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		Body:         []byte(`{"order":"A-1","seq":4}`),
		Headers: amqp.Table{
			"ce_id":            "py-123",
			"ce_type":          OrderPlaced{}.EventName(),
			"ce_source":        "python-checkout",
			"ce_specversion":   "1.0",
			"ce_time":          "2026-11-27T10:00:00Z",
			"ce_correlationid": "corr-9",
		},
	})
	if err != nil {
		t.Fatalf("raw publish: %v", err)
	}
	select {
	case e := <-events:
		md := <-got
		if e != (OrderPlaced{Order: "A-1", Seq: 4}) {
			t.Errorf("handled %+v", e)
		}
		if md.ID != "py-123" || md.Source != "python-checkout" || md.CorrelationID != "corr-9" || md.Event != (OrderPlaced{}).EventName() {
			t.Errorf("metadata %+v", md)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the plain client's message was not handled")
	}
}

// A message busline publishes carries the CloudEvents headers (and the
// content-type and message-id properties) for a plain AMQP client.
func TestInteropBuslineToPlainClient(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	for _, prefix := range []string{"", rabbitmq.PrefixBusline, rabbitmq.PrefixKnative} {
		want := prefix
		if want == "" {
			want = rabbitmq.PrefixAMQP // the default: the AMQP binding's
		}
		t.Run("Prefix"+want, func(t *testing.T) {
			tr := newTransport(t, rabbitmq.Config{HeaderPrefix: prefix})
			topic, _ := ids("interop.out")
			raw := rawChannel(t)
			q, err := raw.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				t.Fatalf("declare queue: %v", err)
			}
			if err := raw.ExchangeDeclare(rabbitmq.ExchangeName(topic), "fanout", true, false, false, false, nil); err != nil {
				t.Fatalf("declare exchange: %v", err)
			}
			if err := raw.QueueBind(q.Name, "", rabbitmq.ExchangeName(topic), false, nil); err != nil {
				t.Fatalf("bind: %v", err)
			}
			deliveries, err := raw.Consume(q.Name, "", true, true, false, false, nil)
			if err != nil {
				t.Fatalf("consume: %v", err)
			}
			b := newBus(t, tr, topic, nil)
			if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "B-2", Seq: 1}, bus.WithCorrelationID("corr-7")); err != nil {
				t.Fatalf("publish: %v", err)
			}
			select {
			case d := <-deliveries:
				for _, k := range []string{"id", "type", "source", "specversion", "time", "correlationid"} {
					if s, ok := d.Headers[want+k].(string); !ok || s == "" {
						t.Errorf("header %s = %#v, want a non-empty string", want+k, d.Headers[want+k])
					}
				}
				if d.Headers[want+"type"] != (OrderPlaced{}).EventName() || d.Headers[want+"source"] != "interop-test" || d.Headers[want+"correlationid"] != "corr-7" {
					t.Errorf("headers %v", d.Headers)
				}
				if d.ContentType != "application/json" || d.MessageId != d.Headers[want+"id"] || d.DeliveryMode != amqp.Persistent {
					t.Errorf("properties content-type %q message-id %q delivery-mode %d", d.ContentType, d.MessageId, d.DeliveryMode)
				}
				var e OrderPlaced
				if err := json.Unmarshal(d.Body, &e); err != nil || e.Order != "B-2" {
					t.Errorf("body %s: %v", d.Body, err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the plain client got nothing")
			}
		})
	}
}

// A plain client's CloudEvents headers are read under every prefix in use:
// the AMQP binding's cloudEvents: and cloudEvents_, knative's ce- and ce_.
func TestInteropEveryHeaderPrefix(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("interop.prefixes")
	got := make(chan bus.Metadata, 4)
	newBus(t, tr, topic, func(b *bus.Bus) {
		if err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			md, _ := bus.MetadataFrom(ctx)
			got <- md
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	raw := rawChannel(t)
	prefixes := []string{rabbitmq.PrefixAMQP, rabbitmq.PrefixAMQPUnderscore, rabbitmq.PrefixKnative, rabbitmq.PrefixBusline}
	for i, p := range prefixes {
		err := raw.PublishWithContext(context.Background(), rabbitmq.ExchangeName(topic), "", false, false, amqp.Publishing{
			ContentType: "application/json; charset=utf-8",
			Body:        []byte(fmt.Sprintf(`{"order":"P","seq":%d}`, i)),
			Headers: amqp.Table{
				p + "id": fmt.Sprintf("id-%d", i), p + "type": OrderPlaced{}.EventName(), p + "source": "/" + p,
				p + "specversion": "1.0", p + "correlationid": "corr",
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range prefixes {
		select {
		case md := <-got:
			seen[md.ID] = true
			if md.Event != (OrderPlaced{}).EventName() || md.CorrelationID != "corr" || md.Source == "" {
				t.Errorf("metadata %+v: the attributes were not read", md)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("handled %d of %d messages", len(seen), len(prefixes))
		}
	}
	for i := range prefixes {
		if !seen[fmt.Sprintf("id-%d", i)] {
			t.Errorf("no message with id id-%d (prefix %q)", i, prefixes[i])
		}
	}
}

// Two messages a plain client sends with neither ce_id nor message-id get
// ids of their own, kept in the poison lane, so that each can be replayed
// alone (they both had the id "" before).
func TestAnonymousMessagesGetStableIDs(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("interop.anon")
	replayed := make(chan OrderPlaced, 2)
	var fixed atomic.Bool
	newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			if !fixed.Load() {
				return bus.Permanent(errors.New("bug"))
			}
			replayed <- e
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	raw := rawChannel(t)
	for i := range 2 {
		err := raw.PublishWithContext(context.Background(), rabbitmq.ExchangeName(topic), "", false, false, amqp.Publishing{
			ContentType: "application/json",
			Body:        []byte(fmt.Sprintf(`{"order":"anon","seq":%d}`, i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	lane, err := bus.NewPoisonLane(tr, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	var list []bus.PoisonMessage
	for deadline := time.Now().Add(15 * time.Second); len(list) < 2; time.Sleep(100 * time.Millisecond) { // polling a broker-side lane
		if time.Now().After(deadline) {
			t.Fatalf("poison lane holds %d messages, want 2", len(list))
		}
		if list, err = lane.List(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if list[0].ID == "" || list[1].ID == "" || list[0].ID == list[1].ID || list[0].Copies != 1 {
		t.Fatalf("poisoned ids %q and %q (copies %d): want two distinct ids", list[0].ID, list[1].ID, list[0].Copies)
	}
	fixed.Store(true)
	first := list[0].ID
	n, err := lane.Replay(context.Background(), func(m bus.PoisonMessage) bool { return m.ID == first })
	if err != nil || n != 1 {
		t.Fatalf("Replay of %s = %d, %v; want 1", first, n, err)
	}
	select {
	case <-replayed:
	case <-time.After(15 * time.Second):
		t.Fatal("the replayed message was not handled")
	}
	left, err := lane.List(context.Background())
	if err != nil || len(left) != 1 || left[0].ID != list[1].ID {
		t.Errorf("after replaying one: %d left (%v), want the other, %s", len(left), err, list[1].ID)
	}
}
