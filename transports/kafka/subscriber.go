package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// KafkaGroup returns the Kafka consumer group as which busline group
// consumes topic: the lane topic itself for group's own retry and poison
// lanes (<topic>.<group>.retry, <topic>.<group>.poison), group for every
// other topic. So a lane's consumers never take part in the rebalances of
// the group's main topics, and tools reading a poison lane (bus.PoisonLane,
// busctl poison) never join the group that consumes the main topic.
func KafkaGroup(topic, group string) string {
	// wire.RetryTopic and wire.PoisonTopic end in "."+group+suffix.
	if strings.HasSuffix(topic, "."+group+wire.LaneRetrySuffix) || strings.HasSuffix(topic, "."+group+wire.LanePoisonSuffix) {
		return topic
	}
	return group
}

// subscriber consumes as one busline group. It is busline's own Watermill
// subscriber on franz-go (see consumer.go): the Watermill adapter's starts
// new groups at the newest offset, blocks a partition on a nack, drops the
// offset of a message acked during a rebalance and only logs when its group
// cannot join.
type subscriber struct {
	t     *Transport
	group string

	mu      sync.Mutex
	members map[string]*member // topic → this subscriber's member of the group
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var (
	_ message.SubscribeInitializer  = (*subscriber)(nil)
	_ transports.Consumer           = (*subscriber)(nil)
	_ transports.ConcurrentConsumer = (*subscriber)(nil)
)

func newSubscriber(t *Transport, group string) *subscriber {
	return &subscriber{t: t, group: group, members: map[string]*member{}, closed: make(chan struct{})}
}

// Subscribe adds one consumer of the group on topic, creating topic first
// when it is missing and Config.CreateTopics allows. Each Subscribe call on
// the same topic adds one message in flight: a consumer receives a message,
// waits for its Ack or Nack, then receives the next. A partition is served
// by one consumer at a time, in offset order; the records a consumer took
// and did not hand out when the partition is revoked or the consumer ends
// go back to the partition unhandled. The channel closes when ctx ends or
// the subscriber closes; a message not acked by then is redelivered to the
// group. The message's context is cancelled when ctx ends, the subscriber
// closes, or its partition is revoked and the revoke's grace has passed.
//
// Subscribing to a topic also runs the mover of the topic's wait topics
// (see Transport.PublishDelayed) while the subscriber has consumers.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	err := s.join(ctx, topic, func(m *member) { m.forward(ctx, out) }, func() { close(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Consume is Subscribe with handle run on the consumer's goroutine: see
// transports.Consumer.
func (s *subscriber) Consume(ctx context.Context, topic string, handle func(*message.Message)) (<-chan struct{}, error) {
	done := make(chan struct{})
	err := s.join(ctx, topic, func(m *member) { m.consume(ctx, handle) }, func() { close(done) })
	if err != nil {
		return nil, err
	}
	return done, nil
}

// ConsumeConcurrent is Consume with up to limit messages unsettled,
// settled in any order: see transports.ConcurrentConsumer. It counts as one
// consumer of the topic and hands each partition's records out in offset
// order, so the bus's key-ordered workers keep each key's order. Acks are
// recorded as the consumer's goroutine sees them (at once while it waits);
// a partition's committed offset stays at its first record not acked, the
// ones acked beyond it listed in the commit metadata.
// A nacked message is handed out again after Config.NackDelay, before the
// records of its partition not yet handed out. A revoked partition's
// unsettled messages get the revoke's grace, then their contexts are
// cancelled; what they ack after the revoke's commit is not committed, and
// the next owner handles them again. One unsettled when the subscriber or
// the transport closes goes back to the group.
func (s *subscriber) ConsumeConcurrent(ctx context.Context, topic string, limit int, handle func(*message.Message)) (<-chan struct{}, error) {
	done := make(chan struct{})
	err := s.join(ctx, topic, func(m *member) { m.consumeConcurrent(ctx, limit, handle) }, func() { close(done) })
	if err != nil {
		return nil, err
	}
	return done, nil
}

// join adds a consumer to this subscriber's member of the group on topic,
// starting the member (and the topic's mover) on first use, and runs
// consume on its own goroutine; ended is called once the consumer left.
func (s *subscriber) join(ctx context.Context, topic string, consume func(m *member), ended func()) error {
	if s.t.isClosed() || s.isClosed() {
		return ErrClosed
	}
	if err := s.t.ensureTopic(ctx, topic); err != nil {
		return err
	}
	s.mu.Lock()
	m := s.members[topic]
	if m == nil || !m.acquire() {
		m = newMember(s, topic)
		if err := m.start(); err != nil {
			s.mu.Unlock()
			return err
		}
		var mv *mover
		if !strings.HasSuffix(topic, wire.LanePoisonSuffix) { // nothing is delayed into a poison lane
			var err error
			if mv, err = s.t.acquireMover(topic); err != nil {
				s.mu.Unlock()
				m.cl.Close()
				return err
			}
		}
		m.acquire()
		s.members[topic] = m
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if mv != nil {
				defer s.t.releaseMover(mv)
			}
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
	return s.t.ensureTopic(context.Background(), topic)
}

// Close leaves the group and waits for this subscriber's consumers to stop.
// Offsets of acked messages are committed first; the others are
// redelivered.
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
