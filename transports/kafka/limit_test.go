package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/wire"
)

// sizedMessage returns a message whose transports.MessageSize is exactly
// size, with the metadata of a busline event (CloudEvents attributes, a
// traceparent, a partition key of keyLen bytes) and extra entries more.
func sizedMessage(id string, size, keyLen, extra int) *message.Message {
	msg := message.NewMessage(id, nil)
	msg.Metadata.Set(wire.MetaID, id)
	msg.Metadata.Set(wire.MetaType, "orders.placed")
	msg.Metadata.Set(wire.MetaSource, "checkout")
	msg.Metadata.Set(wire.MetaSpecVersion, "1.0")
	msg.Metadata.Set(wire.MetaTime, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(wire.MetaContentType, "application/json")
	msg.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	msg.Metadata.Set(wire.MetaPartitionKey, strings.Repeat("k", keyLen))
	for i := range extra {
		msg.Metadata.Set("ce_extension"+strconv.Itoa(i), strings.Repeat("v", 40))
	}
	if pad := size - transports.MessageSize(msg); pad > 0 {
		msg.Payload = []byte(strings.Repeat("x", pad))
	}
	return msg
}

// TestMaxMessageBytesDefault: with the default limit, against a broker
// with the default message.max.bytes (1048588 for a record batch), a
// message of exactly the limit, with a long key and many headers, is
// stored, and one byte more is refused before anything is sent.
func TestMaxMessageBytesDefault(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	limit := tr.Features().MaxMessageBytes
	if limit != 1_000_000 {
		t.Fatalf("Features().MaxMessageBytes = %d, want 1000000 by default", limit)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	topic := unique("limit")
	at := sizedMessage("at-limit-"+strings.Repeat("u", 200), limit, 1024, 100)
	if n := transports.MessageSize(at); n != limit {
		t.Fatalf("test message is %d bytes, want %d", n, limit)
	}
	if err := pub.Publish(topic, at); err != nil {
		t.Fatalf("Publish of exactly the default limit (%d bytes, 1KiB key, 108 headers): %v", limit, err)
	}
	delayed := sizedMessage("delayed-at-limit", limit, 1024, 100)
	if err := tr.PublishDelayed(context.Background(), topic, time.Hour, delayed); err != nil {
		t.Fatalf("PublishDelayed of exactly the default limit: %v", err)
	}
	over := sizedMessage("over-limit", limit+1, 16, 0)
	err = pub.Publish(topic, over)
	var tl *transports.MessageTooLargeError
	if !errors.As(err, &tl) || tl.Size != limit+1 || tl.Limit != limit || tl.Hint != "transport.kafka.max_message_bytes" {
		t.Fatalf("Publish of limit+1 bytes = %v, want a *transports.MessageTooLargeError of %d over %d naming transport.kafka.max_message_bytes", err, limit+1, limit)
	}
	if errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("refused before sending, yet %v says it may have been sent", err)
	}
	counts := readAll(t, c.ListenAddrs(), topic, 1, 30*time.Second)
	if counts[at.UUID] != 1 || counts[over.UUID] != 0 {
		t.Errorf("topic holds %v, want the message at the limit once and not the one over it", counts)
	}
}

// TestMaxMessageBytesConfigured: the limit is Config.MaxMessageBytes, the
// producer's batches follow it, and Validate refuses nonsense.
func TestMaxMessageBytesConfigured(t *testing.T) {
	t.Parallel()
	const limit = 3 << 20
	c := newCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(limit + kafka.BatchOverhead)}))
	cfg := testConfig(c.ListenAddrs())
	cfg.MaxMessageBytes = limit
	tr := open(t, cfg)
	if got := tr.Features().MaxMessageBytes; got != limit {
		t.Fatalf("Features().MaxMessageBytes = %d, want %d", got, limit)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	topic := unique("limit")
	if err := tr.ProvisionGroup(context.Background(), topic, "readers"); err != nil {
		t.Fatal(err)
	}
	// Three at the limit, each one batch larger than a fetch's default
	// 1 MiB per partition, all on one partition, then a small one.
	for i := range 3 {
		if err := pub.Publish(topic, sizedMessage(fmt.Sprintf("big-%d", i), limit, 1024, 100)); err != nil {
			t.Fatalf("Publish of exactly a configured %d bytes: %v", limit, err)
		}
	}
	if err := pub.Publish(topic, sizedMessage("small", 100, 1024, 0)); err != nil {
		t.Fatal(err)
	}
	sub, err := tr.Subscriber("readers")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		select {
		case m := <-msgs:
			if m.UUID != "small" && transports.MessageSize(m) < limit {
				t.Errorf("received %s of %d bytes, want at least %d", m.UUID, transports.MessageSize(m), limit)
			}
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("consumed %d of the 4 messages, the large ones at %d bytes", i, limit)
		}
	}
	for _, bad := range []int{-1, 200 << 20} {
		cfg := testConfig(c.ListenAddrs())
		cfg.MaxMessageBytes = bad
		if _, err := kafka.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "max_message_bytes") {
			t.Errorf("New with max_message_bytes %d = %v, want an error naming it", bad, err)
		}
	}
}

// TestBrokerRefusesTooLarge: a broker whose message.max.bytes is below the
// transport's limit refuses a large record with MESSAGE_TOO_LARGE. The
// publish fails with the broker's reason and without ErrMaybeSent (nothing
// was stored), and the small records batched with it (franz-go fails every
// record buffered on the partition with it) are still stored.
func TestBrokerRefusesTooLarge(t *testing.T) {
	t.Parallel()
	const brokerMax = 64 << 10
	c := newCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(brokerMax)}))
	cfg := testConfig(c.ListenAddrs())
	cfg.Linger = 50 * time.Millisecond // batch the neighbours with the large record
	tr := open(t, cfg)
	topic := unique("refused")
	if err := tr.ProvisionGroup(context.Background(), topic, "readers"); err != nil {
		t.Fatal(err)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for round := range 3 {
		big := sizedMessage(fmt.Sprintf("big-%d", round), 2*brokerMax, 8, 0)
		big.Metadata.Set(wire.MetaPartitionKey, "same")
		var wg sync.WaitGroup
		const small = 20
		errs := make([]error, small)
		for i := range small {
			wg.Go(func() {
				m := sizedMessage(fmt.Sprintf("small-%d-%d", round, i), 300, 4, 0)
				m.Metadata.Set(wire.MetaPartitionKey, "same")
				errs[i] = pub.Publish(topic, m)
			})
		}
		bigErr := pub.Publish(topic, big)
		wg.Wait()
		if !errors.Is(bigErr, kerr.MessageTooLarge) || !strings.Contains(bigErr.Error(), "MESSAGE_TOO_LARGE") {
			t.Errorf("Publish of %d bytes to a broker taking %d = %v, want the broker's MESSAGE_TOO_LARGE", 2*brokerMax, brokerMax, bigErr)
		}
		if errors.Is(bigErr, transports.ErrMaybeSent) {
			t.Errorf("the broker refused the record, yet %v says it may have been stored", bigErr)
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: small publish %d next to the refused one failed: %v", round, i, err)
			}
		}
	}
	counts := readAll(t, c.ListenAddrs(), topic, 60, 30*time.Second)
	for id, n := range counts {
		if strings.HasPrefix(id, "big") || n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	if len(counts) != 60 {
		t.Errorf("%d small messages stored, want 60", len(counts))
	}
}
