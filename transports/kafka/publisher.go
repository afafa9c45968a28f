package kafka

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// PartitionKeyHeader is the metadata key whose value becomes the Kafka
// record key, and so chooses the partition: the CloudEvents partitioning
// extension that bus.WithKey sets.
const PartitionKeyHeader = "ce_partitionkey"

// publisher is busline's own Watermill publisher on Sarama: the adapter's
// sends one message per round trip, this one sends a Publish call's messages
// as one batch through the transport's shared idempotent producer.
type publisher struct {
	t      *Transport
	closed atomic.Bool
}

// Publish sends msgs to topic and returns once the brokers acknowledged all
// of them (acks=all), or with the first error. It creates topic first when
// it is missing and Config.CreateTopics allows.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	producer, err := p.t.syncProducer()
	if err != nil {
		return err
	}
	if err := p.t.ensureTopic(topic); err != nil {
		return err
	}
	records := make([]*sarama.ProducerMessage, 0, len(msgs))
	for _, m := range msgs {
		r, err := marshal(topic, m)
		if err != nil {
			return err
		}
		records = append(records, r)
	}
	if len(records) == 1 {
		_, _, err = producer.SendMessage(records[0])
	} else {
		err = producer.SendMessages(records)
	}
	if err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			err = perrs[0].Err
		}
		return fmt.Errorf("kafka transport: publish %d message(s) to %q: %w", len(msgs), topic, p.t.redact(err))
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
func marshal(topic string, m *message.Message) (*sarama.ProducerMessage, error) {
	if m.Metadata.Get(wmkafka.UUIDHeaderKey) != "" {
		return nil, fmt.Errorf("kafka transport: metadata key %s is reserved for the message UUID (remove it)", wmkafka.UUIDHeaderKey)
	}
	headers := make([]sarama.RecordHeader, 0, len(m.Metadata)+1)
	headers = append(headers, sarama.RecordHeader{Key: []byte(wmkafka.UUIDHeaderKey), Value: []byte(m.UUID)})
	for k, v := range m.Metadata {
		headers = append(headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	r := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(m.Payload), Headers: headers}
	if key := m.Metadata.Get(PartitionKeyHeader); key != "" {
		r.Key = sarama.StringEncoder(key)
	}
	return r, nil
}
