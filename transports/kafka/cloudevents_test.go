package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/busline/busline/bus"
)

// The content types both directions are tested with: the bare media type
// and the one with a charset parameter, which readers must ignore.
var ceContentTypes = []string{"application/json", "application/json; charset=utf-8"}

// charsetJSON is bus.JSON under the content type with a charset.
type charsetJSON struct{}

func (charsetJSON) ContentType() string                { return "application/json; charset=utf-8" }
func (charsetJSON) Marshal(v any) ([]byte, error)      { return bus.JSON.Marshal(v) }
func (charsetJSON) Unmarshal(data []byte, v any) error { return bus.JSON.Unmarshal(data, v) }

// saramaConfig is a Sarama configuration for the CloudEvents SDK's
// kafka_sarama binding on kfake.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	return cfg
}

// TestCloudEventsSDKToBusline: the CloudEvents Go SDK's Kafka binding
// (kafka_sarama) sends events in binary and in structured content mode,
// with and without a charset in the content type; a typed busline handler
// receives each with its id, type, source and data.
func TestCloudEventsSDKToBusline(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic := unique("ce-in")
	b := newBus(t, tr, topic)
	type got struct {
		event orderPlaced
		md    bus.Metadata
	}
	var mu sync.Mutex
	received := map[string]got{}
	arrived := make(chan struct{}, 16)
	if err := bus.Subscribe(b, "billing", func(ctx context.Context, e orderPlaced) error {
		md, _ := bus.MetadataFrom(ctx)
		mu.Lock()
		received[md.ID] = got{e, md}
		mu.Unlock()
		arrived <- struct{}{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)

	sender, err := kafka_sarama.NewSender(c.ListenAddrs(), saramaConfig(), topic)
	if err != nil {
		t.Fatalf("kafka_sarama.NewSender: %v", err)
	}
	defer sender.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := map[string]orderPlaced{}
	for _, mode := range []string{"binary", "structured"} {
		for i, ct := range ceContentTypes {
			ev := cloudevents.NewEvent()
			ev.SetID(fmt.Sprintf("sdk-%s-%d", mode, i))
			ev.SetType(orderPlaced{}.EventName())
			ev.SetSource("sdk-checkout")
			ev.SetExtension("partitionkey", "customer-7")
			data := orderPlaced{OrderID: ev.ID(), Total: 100 + i}
			if err := ev.SetData(ct, data); err != nil {
				t.Fatal(err)
			}
			sendCtx := ctx
			if mode == "structured" {
				sendCtx = binding.WithForceStructured(ctx)
			}
			if err := sender.Send(sendCtx, binding.ToMessage(&ev)); err != nil {
				t.Fatalf("SDK send %s (%s): %v", ev.ID(), ct, err)
			}
			sent[ev.ID()] = data
		}
	}
	for range sent {
		select {
		case <-arrived:
		case <-ctx.Done():
			mu.Lock()
			t.Fatalf("busline handled %d of the SDK's %d events: %v", len(received), len(sent), received)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, want := range sent {
		g, ok := received[id]
		switch {
		case !ok:
			t.Errorf("event %s not handled", id)
		case g.event != want:
			t.Errorf("event %s handled as %+v, want %+v", id, g.event, want)
		case g.md.Event != want.EventName() || g.md.Source != "sdk-checkout" || g.md.Key != "customer-7":
			t.Errorf("event %s: type %q, source %q, key %q", id, g.md.Event, g.md.Source, g.md.Key)
		}
	}
}

// TestBuslineToCloudEventsSDK: busline publishes, with either content
// type, and the CloudEvents SDK's Kafka binding receives, from a Sarama
// consumer group, a valid event in binary mode with the same id, type,
// source and data.
func TestBuslineToCloudEventsSDK(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic := unique("ce-out")
	sent := map[string]orderPlaced{}
	for i, codec := range []bus.Codec{bus.JSON, charsetJSON{}} {
		b, err := bus.New(tr, bus.Config{
			Service: "busline-checkout",
			Logger:  quiet(),
			Codec:   codec,
			Topics:  map[string]string{orderPlaced{}.EventName(): topic},
		})
		if err != nil {
			t.Fatal(err)
		}
		e := orderPlaced{OrderID: fmt.Sprintf("o-%d", i), Total: 200 + i}
		var id string
		if err := bus.Publish(context.Background(), b, e, bus.WithKey("customer-9"), bus.StoreID(&id)); err != nil {
			t.Fatal(err)
		}
		sent[id] = e
		_ = b.Close(context.Background())
	}

	consumer, err := kafka_sarama.NewConsumer(c.ListenAddrs(), saramaConfig(), unique("sdk-group"), topic)
	if err != nil {
		t.Fatalf("kafka_sarama.NewConsumer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inbound := make(chan error, 1)
	go func() { inbound <- consumer.OpenInbound(ctx) }()
	defer func() {
		cancel()
		_ = consumer.Close(context.Background())
		<-inbound
	}()
	got := map[string]*cloudevents.Event{}
	for len(got) < len(sent) {
		msg, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("SDK receive after %d of %d events: %v", len(got), len(sent), err)
		}
		if enc := msg.ReadEncoding(); enc != binding.EncodingBinary {
			t.Errorf("SDK read the message in %v mode, want binary", enc)
		}
		ev, err := binding.ToEvent(ctx, msg)
		_ = msg.Finish(nil)
		if err != nil {
			t.Fatalf("SDK ToEvent: %v", err)
		}
		got[ev.ID()] = ev
	}
	for id, want := range sent {
		ev := got[id]
		if ev == nil {
			t.Errorf("SDK did not receive %s", id)
			continue
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("event %s is not a valid CloudEvent: %v", id, err)
		}
		var data orderPlaced
		if err := json.Unmarshal(ev.Data(), &data); err != nil || data != want {
			t.Errorf("event %s data %s (%v), want %+v", id, ev.Data(), err, want)
		}
		if ev.Type() != want.EventName() || ev.Source() != "busline-checkout" || ev.SpecVersion() != "1.0" || ev.Time().IsZero() {
			t.Errorf("event %s: type %q source %q specversion %q time %v", id, ev.Type(), ev.Source(), ev.SpecVersion(), ev.Time())
		}
		if ev.Extensions()["partitionkey"] != "customer-9" {
			t.Errorf("event %s: partitionkey %v, want customer-9", id, ev.Extensions()["partitionkey"])
		}
		t.Logf("SDK received %s: datacontenttype %q, data %s", id, ev.DataContentType(), ev.Data())
	}
}
