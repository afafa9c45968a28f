package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/transports/transporttest"
)

type orderPlaced struct {
	OrderID string `json:"order_id"`
	Total   int    `json:"total"`
}

func (orderPlaced) EventName() string { return "orders.placed" }

// TestInteropPlainClient: a record produced by a plain Kafka client
// (franz-go), with CloudEvents headers and no Watermill header, reaches a
// typed handler with its metadata.
func TestInteropPlainClient(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic := unique("interop")
	b := newBus(t, tr, topic)
	got := make(chan bus.Metadata, 1)
	events := make(chan orderPlaced, 1)
	err := bus.Subscribe(b, "billing", func(ctx context.Context, e orderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		events <- e
		got <- md
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runBus(t, b)

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{
		Topic: topic,
		Key:   []byte("customer-7"),
		Value: []byte(`{"order_id":"o-42","total":1999}`),
		Headers: []kgo.RecordHeader{
			{Key: "ce_id", Value: []byte("py-1")},
			{Key: "ce_type", Value: []byte("orders.placed")},
			{Key: "ce_source", Value: []byte("python-checkout")},
			{Key: "ce_specversion", Value: []byte("1.0")},
			{Key: "ce_time", Value: []byte("2026-01-02T03:04:05Z")},
			{Key: "ce_partitionkey", Value: []byte("customer-7")},
			{Key: "content-type", Value: []byte("application/json")},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("franz-go produce: %v", err)
	}
	select {
	case e := <-events:
		md := <-got
		if e != (orderPlaced{OrderID: "o-42", Total: 1999}) {
			t.Errorf("handled %+v", e)
		}
		if md.ID != "py-1" || md.Source != "python-checkout" || md.Key != "customer-7" || md.Event != "orders.placed" {
			t.Errorf("metadata id %q source %q key %q event %q", md.ID, md.Source, md.Key, md.Event)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the plain client's record was not handled within 30s")
	}
}

// newBus returns a bus on tr that maps every test event to topic.
func newBus(t testing.TB, tr *kafka.Transport, topic string) *bus.Bus {
	t.Helper()
	b, err := bus.New(tr, bus.Config{
		Service: "kafka-test",
		Logger:  quiet(),
		Topics:  map[string]string{orderPlaced{}.EventName(): topic},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// runBus runs b until the end of the test.
func runBus(t testing.TB, b *bus.Bus) { transporttest.Start(t, b) }

// publish publishes one message with id as UUID and payload.
func publish(t testing.TB, tr *kafka.Transport, topic, id string) {
	t.Helper()
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(topic, message.NewMessage(id, []byte(id))); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}
