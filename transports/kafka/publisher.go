package kafka

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/busline/busline/wire"
)

// PartitionKeyHeader is the metadata key whose value becomes the Kafka
// record key, and so chooses the partition: the CloudEvents partitioning
// extension that bus.WithKey sets.
const PartitionKeyHeader = wire.MetaPartitionKey

// uuidHeader carries the Watermill message UUID, under the name the
// Watermill Kafka adapter (watermill-kafka's UUIDHeaderKey) uses, so that
// records stay readable by either.
const uuidHeader = "_watermill_message_uuid"

// publisher is busline's Watermill publisher on franz-go: a Publish call's
// messages go to the transport's shared idempotent producer at once, and
// concurrent publishes share its pipelined requests.
type publisher struct {
	t      *Transport
	closed atomic.Bool
}

// Publish sends msgs to topic and returns once the brokers acknowledged all
// of them (acks=all), or with the first error. It creates topic first when
// it is missing and Config.CreateTopics allows. The first message's context
// bounds the wait.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx := msgs[0].Context()
	return p.t.produce(ctx, topic, msgs, nil)
}

// produce sends msgs to topic, each record changed by edit when not nil,
// and waits for every acknowledgement.
func (t *Transport) produce(ctx context.Context, topic string, msgs []*message.Message, edit func(*kgo.Record)) error {
	if t.isClosed() {
		return ErrClosed
	}
	if err := t.ensureTopic(ctx, topic); err != nil {
		return err
	}
	records := make([]*kgo.Record, 0, len(msgs))
	for _, m := range msgs {
		r, err := marshal(topic, m)
		if err != nil {
			return err
		}
		if edit != nil {
			edit(r)
		}
		records = append(records, r)
	}
	if err := t.produceRecords(ctx, records...); err != nil {
		return fmt.Errorf("kafka transport: publish %d message(s) to %q: %w", len(msgs), topic, err)
	}
	return nil
}

// produceRecords produces records and waits for all of their
// acknowledgements; it returns the first error.
func (t *Transport) produceRecords(ctx context.Context, records ...*kgo.Record) error {
	if err := t.cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return t.redact(err)
	}
	return nil
}

// Close releases this publisher only; the shared producer lives until the
// transport closes.
func (p *publisher) Close() error {
	p.closed.Store(true)
	return nil
}

// marshal turns a Watermill message into a Kafka record: the payload as
// value, the message UUID and every metadata entry as headers (as the
// Watermill adapter does), and ce_partitionkey as the record key.
func marshal(topic string, m *message.Message) (*kgo.Record, error) {
	if _, ok := m.Metadata[uuidHeader]; ok {
		return nil, fmt.Errorf("kafka transport: metadata key %s is reserved for the message UUID (remove it)", uuidHeader)
	}
	// One buffer holds every header value: one allocation, not one each.
	size := len(m.UUID)
	for _, v := range m.Metadata {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	value := func(v string) []byte {
		buf = append(buf, v...)
		return buf[len(buf)-len(v) : len(buf) : len(buf)]
	}
	headers := make([]kgo.RecordHeader, 0, len(m.Metadata)+1)
	headers = append(headers, kgo.RecordHeader{Key: uuidHeader, Value: value(m.UUID)})
	for k, v := range m.Metadata {
		headers = append(headers, kgo.RecordHeader{Key: k, Value: value(v)})
	}
	r := &kgo.Record{Topic: topic, Value: m.Payload, Headers: headers}
	if key := m.Metadata.Get(PartitionKeyHeader); key != "" {
		r.Key = []byte(key)
	}
	return r, nil
}
