package transports

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Transport connects busline to one message broker.
//
// Implementations are safe for concurrent use. The publishers and subscribers
// a transport hands out belong to it: closing one of them releases only that
// one, while Close releases the transport and everything it handed out.
type Transport interface {
	// Publisher returns a publisher whose Publish returns only after the broker
	// has the message (confirmed, acknowledged or stored, per transport).
	// Publish returns by the deadline of the messages' context (plus a
	// margin each transport documents); its errors wrap ErrMaybeSent when
	// the broker may have stored a message anyway, and a
	// *MessageTooLargeError for a message over Features().MaxMessageBytes.
	Publisher() (message.Publisher, error)

	// Subscriber returns a new subscriber that consumes as the consumer group
	// named group: every group receives its own copy of each message, and the
	// subscribers of one group compete for them.
	Subscriber(group string) (message.Subscriber, error)

	// Features reports what the transport guarantees.
	Features() Features

	// Health returns nil when the transport can publish and consume, or an
	// error that says what is wrong.
	Health(ctx context.Context) error

	// Close releases the connection and stops every subscription. It is
	// idempotent. Messages in flight and not yet acked are left to the broker
	// for redelivery.
	Close() error
}

// Features describes the guarantees of a transport. The conformance suite in
// package transporttest switches its expectations on them.
type Features struct {
	// Persistent is true when messages survive a restart of the broker or, for
	// an embedded transport, of the process.
	Persistent bool

	// OrderedPerKey is true when a single consumer of a group receives the
	// messages that share a key in publish order.
	OrderedPerKey bool

	// NativeDelay is true when the transport is a Delayer: it keeps delayed
	// messages on the broker (or, for an embedded transport, in the
	// transport) until they are due, with no consumer holding them. The bus
	// then delays redeliveries and scheduled publishes through it; without
	// it, redeliveries wait in a consumer (see package bus) and scheduled
	// publish is refused.
	NativeDelay bool

	// MaxDelay is the longest delay the transport's PublishDelayed accepts.
	// Zero with NativeDelay means no limit.
	MaxDelay time.Duration

	// MaxMessageBytes is the largest message, as MessageSize counts it, that
	// Publish and PublishDelayed accept; a larger one is refused before
	// anything is sent with a *MessageTooLargeError. Zero means no limit.
	MaxMessageBytes int
}

// Delayer is implemented by transports that can store a message until it is
// due and only then make it deliverable, so that no consumer sleeps on a
// waiting message: a waiting message holds no goroutine, no prefetch slot
// and no unacked delivery, and so never stalls a rebalance or a shutdown.
// The bus uses it for delayed redelivery (a group's retry lane) and for
// scheduled publish (bus.WithDelay).
type Delayer interface {
	// PublishDelayed publishes msgs to topic once delay has passed: the
	// transport stores them now, and when delay ends they are delivered to
	// every group provisioned on topic, as if published then. It returns
	// once the broker has stored them (confirmed, as Publish), or with an
	// error; a delay of zero or less publishes at once. The delay is kept by
	// the broker or the transport, measured from the call, and a message is
	// never delivered before it; how late it may be is each transport's to
	// document. Delays longer than Features().MaxDelay are refused. Where
	// the transport needs a running subscriber of topic to move due
	// messages (Redis), a message is delivered once one runs.
	PublishDelayed(ctx context.Context, topic string, delay time.Duration, msgs ...*message.Message) error
}

// GroupProvisioner is implemented by transports that can create a group's
// queue or consumer group before any consumer subscribes, so that messages
// published in between are kept for the group.
type GroupProvisioner interface {
	ProvisionGroup(ctx context.Context, topic, group string) error
}

// GroupRemover is implemented by transports that can delete a group's queue
// or consumer group on a topic, with whatever messages it still holds. Tools
// use it to clean up the ephemeral groups they create (busctl tail).
type GroupRemover interface {
	RemoveGroup(ctx context.Context, topic, group string) error
}

// Consumer is implemented by subscribers that can run a handler on their own
// delivery goroutine instead of handing each message over a channel. The bus
// consumes through it when a transport's subscriber has it: a message then
// costs no goroutine switch, where the channel of Subscribe costs two (the
// hand-over, and the wake-up on Ack). The guarantees are Subscribe's: each
// Consume call handles one message at a time, in the order Subscribe would
// hand them out, and a message is settled by its Ack or Nack.
type Consumer interface {
	// Consume starts calling handle with the messages of topic, one at a
	// time, until ctx is done or the subscriber closes. handle acks or nacks
	// the message before it returns; a message it did neither to is treated
	// as nacked. The message's context is ctx; Handle does both. Consume
	// returns at once, with an error if the subscription cannot start; done
	// is closed after the last call to handle returned and its outcome was
	// recorded.
	Consume(ctx context.Context, topic string, handle func(*message.Message)) (done <-chan struct{}, err error)
}

// ConcurrentConsumer is implemented by subscribers that can keep several
// messages of a topic in flight on one consumer and settle them in any
// order. The bus uses it for key-ordered concurrency: one consumer per
// topic hands messages, in delivery order, to workers chosen by the
// message's key, so that different keys run in parallel while each key
// keeps its order.
type ConcurrentConsumer interface {
	// ConsumeConcurrent calls handle with the messages of topic in delivery
	// order, one call at a time on one goroutine, like Consume; but handle
	// need not settle a message before it returns. At most limit messages
	// are unsettled at once: the next call waits for a settlement. Each
	// message is settled by its Ack or Nack, in any order, also after ctx is
	// done: ctx only stops new calls. done is closed once the last call
	// returned and every message handed out was settled, or given back to
	// the broker because the subscriber or transport closed. Where acks
	// must be committed in order (Kafka), only the contiguous acked prefix
	// is committed.
	ConsumeConcurrent(ctx context.Context, topic string, limit int, handle func(*message.Message)) (done <-chan struct{}, err error)
}

// Handle runs handle for msg the way Consume must: with ctx as the message's
// context, then reports whether handle acked it. A message nacked, or neither
// acked nor nacked, reports false.
func Handle(ctx context.Context, msg *message.Message, handle func(*message.Message)) (acked bool) {
	msg.SetContext(ctx)
	handle(msg)
	select {
	case <-msg.Acked():
		return true
	default:
		return false
	}
}

// BacklogReader is implemented by transports that can report what a group
// has yet to finish on a topic without consuming, creating or changing
// anything: instrumentation reads consumer lag and lane depths through it
// (package otelbus's gauges).
type BacklogReader interface {
	// Backlog reports group's backlog on topic. A topic or group that does
	// not exist has an empty backlog.
	Backlog(ctx context.Context, topic, group string) (Backlog, error)
}

// Inspector is implemented by transports that can also list a topic's
// groups without changing anything: tools use it to check before they act
// (busctl, bus.PoisonLane).
type Inspector interface {
	BacklogReader

	// Groups returns the names of the groups provisioned on topic, sorted.
	// A topic that does not exist has none.
	Groups(ctx context.Context, topic string) ([]string, error)
}

// Browser is implemented by transports that can show the messages waiting
// for a group on a topic without consuming them or changing anything else
// on the broker: the bus lists poison lanes through it
// (bus.PoisonLane.List), where it would otherwise consume the lane and put
// every message back.
type Browser interface {
	// Browse returns up to limit of the messages waiting for group on
	// topic, oldest first (limit <= 0: all), as copies that cannot be acked.
	// A topic or group that does not exist has none.
	Browse(ctx context.Context, topic, group string, limit int) ([]*message.Message, error)
}

// ConsumerTimeouter is implemented by transports whose broker takes a
// delivery back when it stays unsettled too long (RabbitMQ's
// consumer_timeout): the bus refuses a subscription whose attempts, by
// their timeout, could outlast it.
type ConsumerTimeouter interface {
	// ConsumerTimeout is the longest a delivery may stay unsettled; zero
	// means no limit.
	ConsumerTimeout() time.Duration
}

// Backlog is what a group has yet to finish on a topic.
type Backlog struct {
	// Messages counts the messages the group has not acked: those waiting
	// and those delivered and in flight. For a topic that delayed messages
	// are scheduled to (a retry lane), it also counts those the transport
	// keeps until they are due, where the transport can tell.
	Messages int64

	// Oldest is when the oldest of them was published, where the transport
	// knows; zero when there are none or it cannot tell.
	Oldest time.Time
}
