package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// PublishOption changes one Publish call.
type PublishOption func(*publishOptions)

type publishOptions struct {
	key           string
	correlationID string
	causationID   string
	metadata      map[string]string
	delay         time.Duration
	deliverAt     time.Time
	id            string
	idOut         *string
}

// WithID sets the event's id (ce_id and the Watermill UUID) instead of a new
// UUIDv7: an idempotency key, so that a consumer deduplicating on
// Metadata.ID sees a republish of the same event as a duplicate. At most
// 256 bytes; an empty id means a new one.
func WithID(id string) PublishOption {
	return func(o *publishOptions) { o.id = id }
}

// StoreID makes Publish store the event's id, the one busline assigned or
// the one WithID set, in *dst once the message is built, for logging or
// correlation; it is stored even when the send then fails.
func StoreID(dst *string) PublishOption {
	return func(o *publishOptions) { o.idOut = dst }
}

// maxIDLen bounds WithID.
const maxIDLen = 256

// WithKey sets the ordering key (ce_partitionkey): the Kafka partition key,
// and the key whose messages keep their order where the transport keeps it.
func WithKey(key string) PublishOption {
	return func(o *publishOptions) { o.key = key }
}

// WithCorrelationID sets ce_correlationid. By default a message published
// from inside a handler carries the handled message's correlation id (or its
// id, if it had none), and a message published elsewhere carries none.
func WithCorrelationID(id string) PublishOption {
	return func(o *publishOptions) { o.correlationID = id }
}

// WithCausationID sets ce_causationid. By default a message published from
// inside a handler carries the handled message's id.
func WithCausationID(id string) PublishOption {
	return func(o *publishOptions) { o.causationID = id }
}

// WithMetadata adds one metadata entry. It cannot replace the ce_* attributes
// or content-type that busline sets; use the dedicated options for those.
func WithMetadata(key, value string) PublishOption {
	return func(o *publishOptions) {
		if o.metadata == nil {
			o.metadata = map[string]string{}
		}
		o.metadata[key] = value
	}
}

// WithDelay schedules the event: it is delivered to every group d after
// Publish returns, and kept by the broker meanwhile (no consumer holds it,
// see transports.Delayer). Publish returns once the broker stored it. d <= 0
// publishes at once. The transport must be a transports.Delayer (memory,
// redis and rabbitmq are); otherwise, or beyond its Features().MaxDelay,
// Publish fails with ErrDelayUnsupported. Each transport documents how late
// a scheduled event may be delivered.
func WithDelay(d time.Duration) PublishOption {
	return func(o *publishOptions) { o.delay, o.deliverAt = d, time.Time{} }
}

// WithDeliverAt schedules the event for t, measured on this process's
// clock: it is WithDelay(time.Until(t)) at the time of Publish, so a time
// in the past publishes at once.
func WithDeliverAt(t time.Time) PublishOption {
	return func(o *publishOptions) { o.deliverAt, o.delay = t, 0 }
}

// RawEvent is an event given by its name and its payload already encoded
// with the bus's codec, for tools and bridges that have no Go type for it:
// Publish sends Data as it is, with the usual CloudEvents metadata.
type RawEvent struct {
	Name string // the event name, e.g. "orders.placed"
	Data []byte // the encoded payload, e.g. JSON
}

// EventName returns e.Name.
func (e RawEvent) EventName() string { return e.Name }

// Publish encodes e with the bus's codec and publishes it to e's topic. It
// returns once the transport has the message (broker-confirmed where the
// broker confirms), or with the error that prevented it: a nil error means
// the message will be delivered to every group provisioned on the topic.
//
// Publish returns by ctx's deadline, plus a margin each transport
// documents. An error that wraps transports.ErrMaybeSent means the broker
// may have the event anyway (republish it under the same id, WithID, for
// consumers that deduplicate); any other error means it was not stored. An
// event over the transport's size limit, less wire.FailureReserve bytes kept
// for the failure record a lane may add, is refused with a
// *transports.MessageTooLargeError before anything is sent. When Publish is
// called from a handler, ctx also carries the handled message's ids
// (correlation and causation).
func Publish(ctx context.Context, b *Bus, e Event, opts ...PublishOption) error {
	if e == nil {
		return fmt.Errorf("bus.Publish: nil event")
	}
	name := e.EventName()
	if err := ValidateName("event", name); err != nil {
		return fmt.Errorf("bus.Publish %T: %w", e, err)
	}
	if b.isClosed() {
		return fmt.Errorf("bus.Publish %s: %w", name, ErrClosed)
	}
	msg, delay, err := b.newMessage(ctx, name, e, opts)
	if err != nil {
		return fmt.Errorf("bus.Publish %s: %w", name, err)
	}
	if err := b.send(ctx, b.topic(name), delay, msg); err != nil {
		return fmt.Errorf("bus.Publish %s: %w", name, err)
	}
	return nil
}

// send publishes msgs to topic, through the transport's Delayer when delay
// is positive, and tells the Observer.
func (b *Bus) send(ctx context.Context, topic string, delay time.Duration, msgs ...*message.Message) error {
	if obs := b.cfg.Observer; obs != nil {
		done := obs.Publishing(ctx, Publication{Topic: topic, Delay: max(delay, 0), Transport: b.kind}, msgs)
		err := b.sendNow(ctx, topic, delay, msgs)
		done(err)
		return err
	}
	return b.sendNow(ctx, topic, delay, msgs)
}

func (b *Bus) sendNow(ctx context.Context, topic string, delay time.Duration, msgs []*message.Message) error {
	if delay > 0 {
		return b.publishDelayed(ctx, topic, delay, msgs)
	}
	for _, m := range msgs {
		m.SetContext(ctx) // the transports bound a publish by its message's context
	}
	if err := b.publisher.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("to topic %s: %w", topic, err)
	}
	return nil
}

// publishDelayed publishes msgs through the transport's Delayer.
func (b *Bus) publishDelayed(ctx context.Context, topic string, delay time.Duration, msgs []*message.Message) error {
	d, ok := b.transport.(transports.Delayer)
	if !ok {
		return fmt.Errorf("with a delay: %w: %T cannot keep a message until it is due (use a transport that implements transports.Delayer: memory, rabbitmq, redis or kafka)", ErrDelayUnsupported, b.transport)
	}
	if limit := b.transport.Features().MaxDelay; limit > 0 && delay > limit {
		return fmt.Errorf("with a delay of %v: %w: the transport keeps messages for at most %v", delay, ErrDelayUnsupported, limit)
	}
	if err := d.PublishDelayed(ctx, topic, delay, msgs...); err != nil {
		return fmt.Errorf("to topic %s with a delay of %v: %w", topic, delay, err)
	}
	return nil
}

// newMessage builds the CloudEvents envelope of e, and returns the delay the
// options ask for.
func (b *Bus) newMessage(ctx context.Context, name string, e Event, opts []PublishOption) (*message.Message, time.Duration, error) {
	var o publishOptions
	if md, ok := MetadataFrom(ctx); ok {
		o.causationID = md.ID
		o.correlationID = md.CorrelationID
		if o.correlationID == "" {
			o.correlationID = md.ID
		}
	}
	for _, opt := range opts {
		opt(&o)
	}
	var payload []byte
	if raw, ok := e.(RawEvent); ok {
		payload = raw.Data
	} else {
		var err error
		if payload, err = b.cfg.Codec.Marshal(e); err != nil {
			return nil, 0, fmt.Errorf("encode: %w", err)
		}
	}
	id, at := o.id, ""
	if id == "" {
		id, at = idAndTime(time.Now())
	} else if len(id) > maxIDLen {
		return nil, 0, fmt.Errorf("WithID: id of %d bytes, at most %d", len(id), maxIDLen)
	} else {
		at = time.Now().UTC().Format(time.RFC3339Nano)
	}
	if o.idOut != nil {
		*o.idOut = id
	}
	msg := message.NewMessage(id, payload)
	for k, v := range o.metadata {
		msg.Metadata.Set(k, v)
	}
	msg.Metadata.Set(MetaID, msg.UUID)
	msg.Metadata.Set(MetaType, name)
	msg.Metadata.Set(MetaSource, b.cfg.Service)
	msg.Metadata.Set(MetaSpecVersion, SpecVersion)
	msg.Metadata.Set(MetaTime, at)
	msg.Metadata.Set(MetaContentType, b.cfg.Codec.ContentType())
	setIfNotEmpty(msg.Metadata, MetaPartitionKey, o.key)
	setIfNotEmpty(msg.Metadata, MetaCorrelationID, o.correlationID)
	setIfNotEmpty(msg.Metadata, MetaCausationID, o.causationID)
	if b.maxEvent > 0 {
		if n := transports.MessageSize(msg); n > b.maxEvent {
			return nil, 0, &transports.MessageTooLargeError{ID: id, Size: n, Limit: b.maxEvent,
				Hint: fmt.Sprintf("the transport's max_message_bytes, %d, less the %d bytes busline keeps for the failure record a lane adds", b.maxEvent+wire.FailureReserve, wire.FailureReserve)}
		}
	}
	delay := o.delay
	if !o.deliverAt.IsZero() {
		delay = time.Until(o.deliverAt)
	}
	return msg, delay, nil
}

func setIfNotEmpty(md message.Metadata, key, value string) {
	if value != "" {
		md.Set(key, value)
	} else {
		delete(md, key)
	}
}
