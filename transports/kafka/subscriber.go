package kafka

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// subscriber consumes as one Kafka consumer group. It is busline's own
// Watermill subscriber on Sarama's consumer group (see consumer.go); the
// Watermill adapter's starts new groups at the newest offset, drops the
// offset of a message acked during a rebalance, serves at most one message
// per partition and only logs when its group cannot join.
type subscriber struct {
	t     *Transport
	group string

	mu      sync.Mutex
	members map[string]*member // topic → this subscriber's member of the group
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var _ message.SubscribeInitializer = (*subscriber)(nil)

func newSubscriber(t *Transport, group string) *subscriber {
	return &subscriber{t: t, group: group, members: map[string]*member{}, closed: make(chan struct{})}
}

// Subscribe adds one consumer of the group on topic, creating topic first
// when it is missing and Config.CreateTopics allows. Each Subscribe call on
// the same topic adds one message in flight: a consumer receives a message,
// waits for its Ack or Nack, then receives the next. (Behind the channel, a
// consumer takes up to 64 consecutive records of a partition at once, and
// reports their outcomes together; the records not yet handed out when the
// partition is revoked go back to it unhandled.) The channel closes when
// ctx ends or the subscriber closes; a message not acked by then is
// redelivered to the group.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	err := s.join(topic, func(m *member) { m.forward(ctx, out) }, func() { close(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Consume is Subscribe with handle run on the consumer's goroutine: see
// transports.Consumer.
func (s *subscriber) Consume(ctx context.Context, topic string, handle func(*message.Message)) (<-chan struct{}, error) {
	done := make(chan struct{})
	err := s.join(topic, func(m *member) { m.consume(ctx, handle) }, func() { close(done) })
	if err != nil {
		return nil, err
	}
	return done, nil
}

// join adds a consumer to this subscriber's member of the group on topic,
// starting the member on first use, and runs consume on its own goroutine;
// ended is called once the consumer left the member.
func (s *subscriber) join(topic string, consume func(m *member), ended func()) error {
	if s.t.isClosed() || s.isClosed() {
		return ErrClosed
	}
	if err := s.t.ensureTopic(topic); err != nil {
		return err
	}
	s.mu.Lock()
	m := s.members[topic]
	if m == nil || !m.acquire() {
		m = newMember(s, topic)
		m.acquire()
		s.members[topic] = m
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			m.run()
		}()
	}
	s.mu.Unlock()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer ended()
		defer m.release()
		consume(m)
	}()
	return nil
}

// SubscribeInitialize creates topic when it is missing and allowed.
func (s *subscriber) SubscribeInitialize(topic string) error {
	return s.t.ensureTopic(topic)
}

// Close leaves the group and waits for this subscriber's consumers to stop.
// Offsets of acked messages are committed; the others are redelivered.
func (s *subscriber) Close() error {
	s.close()
	s.t.forget(s)
	return nil
}

func (s *subscriber) close() {
	s.once.Do(func() { close(s.closed) })
	s.wg.Wait()
}

func (s *subscriber) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// healthErr returns the error that keeps one of this subscriber's members
// from joining its group, if any.
func (s *subscriber) healthErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, m := range s.members {
		if err := m.joinErr(); err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	return nil
}

// unmarshal turns a Kafka record into a Watermill message with the adapter's
// DefaultMarshaler (headers become metadata), plus a UUID for records that
// plain Kafka clients produced without the Watermill header: the CloudEvents
// id when present, else topic/partition/offset.
func unmarshal(r *sarama.ConsumerMessage) *message.Message {
	m, _ := wmkafka.DefaultMarshaler{}.Unmarshal(r) // never fails
	if m.UUID == "" {
		m.UUID = m.Metadata.Get("ce_id")
	}
	if m.UUID == "" {
		m.UUID = fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	}
	return m
}
