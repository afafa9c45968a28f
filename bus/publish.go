package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// PublishOption changes one Publish call.
type PublishOption func(*publishOptions)

type publishOptions struct {
	key           string
	correlationID string
	causationID   string
	metadata      map[string]string
}

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
// ctx carries the handled message's ids when Publish is called from a
// handler; Publish does not watch ctx for cancellation, because Watermill
// publishers do not take one.
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
	msg, err := b.newMessage(ctx, name, e, opts)
	if err != nil {
		return fmt.Errorf("bus.Publish %s: %w", name, err)
	}
	topic := b.topic(name)
	if err := b.publisher.Publish(topic, msg); err != nil {
		return fmt.Errorf("bus.Publish %s to topic %s: %w", name, topic, err)
	}
	return nil
}

// newMessage builds the CloudEvents envelope of e.
func (b *Bus) newMessage(ctx context.Context, name string, e Event, opts []PublishOption) (*message.Message, error) {
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
			return nil, fmt.Errorf("encode: %w", err)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("message id: %w", err)
	}
	msg := message.NewMessage(id.String(), payload)
	for k, v := range o.metadata {
		msg.Metadata.Set(k, v)
	}
	msg.Metadata.Set(MetaID, msg.UUID)
	msg.Metadata.Set(MetaType, name)
	msg.Metadata.Set(MetaSource, b.cfg.Service)
	msg.Metadata.Set(MetaSpecVersion, SpecVersion)
	msg.Metadata.Set(MetaTime, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(MetaContentType, b.cfg.Codec.ContentType())
	setIfNotEmpty(msg.Metadata, MetaPartitionKey, o.key)
	setIfNotEmpty(msg.Metadata, MetaCorrelationID, o.correlationID)
	setIfNotEmpty(msg.Metadata, MetaCausationID, o.causationID)
	return msg, nil
}

func setIfNotEmpty(md message.Metadata, key, value string) {
	if value != "" {
		md.Set(key, value)
	} else {
		delete(md, key)
	}
}
