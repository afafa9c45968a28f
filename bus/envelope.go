package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/wire"
)

// The CloudEvents attributes busline writes on every message, as metadata
// keys; they are package wire's constants, repeated here so that handlers
// reading Metadata.Raw need no other import. See package wire for the
// complete wire vocabulary.
const (
	MetaID            = wire.MetaID            // unique message id (UUIDv7); also the Watermill message UUID
	MetaType          = wire.MetaType          // the event name
	MetaSource        = wire.MetaSource        // the publishing service
	MetaSpecVersion   = wire.MetaSpecVersion   // always "1.0"
	MetaTime          = wire.MetaTime          // publish time, RFC 3339 with nanoseconds, UTC
	MetaPartitionKey  = wire.MetaPartitionKey  // ordering key (CloudEvents partitioning extension)
	MetaCorrelationID = wire.MetaCorrelationID // id shared by every message of one business flow
	MetaCausationID   = wire.MetaCausationID   // id of the message whose handler published this one
	MetaTraceParent   = wire.MetaTraceParent   // W3C trace context, passed through when present
	MetaContentType   = wire.MetaContentType   // the codec's MIME type, e.g. application/json
)

// SpecVersion is the CloudEvents version busline writes.
const SpecVersion = wire.SpecVersion

// Metadata describes the message being handled. Handlers get it with
// MetadataFrom.
type Metadata struct {
	ID            string           // ce_id
	Event         string           // ce_type, the event name
	Source        string           // ce_source, the publishing service
	Topic         string           // the topic the message was consumed from
	Group         string           // the consumer group handling it
	Key           string           // ce_partitionkey, the ordering key; empty if none
	CorrelationID string           // ce_correlationid; empty if none
	CausationID   string           // ce_causationid; empty if none
	PublishedAt   time.Time        // ce_time; zero if absent or malformed
	Attempt       int              // 1 for the first delivery, counting retries and redeliveries busline knows of
	Raw           message.Metadata // every metadata entry as received, including transport-specific ones
}

type metadataKey struct{}

// MetadataFrom returns the metadata of the message whose handler received
// ctx. ok is false outside a busline handler.
func MetadataFrom(ctx context.Context) (md Metadata, ok bool) {
	p, ok := ctx.Value(metadataKey{}).(*Metadata)
	if !ok {
		return Metadata{}, false
	}
	md = *p
	md.Attempt = attemptFrom(ctx, md.Attempt)
	return md, true
}

// HandlerContext returns a copy of parent that carries md as a handler's
// context does, so that a handler reading MetadataFrom can be unit-tested
// without a bus (see package bustest). md.Attempt 0 reads as 1.
func HandlerContext(parent context.Context, md Metadata) context.Context {
	if md.Attempt == 0 {
		md.Attempt = 1
	}
	return withMetadata(parent, &md)
}

func withMetadata(ctx context.Context, md *Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md)
}

// ReadMetadata returns the Metadata a handler of group would get for a
// message with Watermill UUID uuid and metadata raw, consumed from topic,
// at its first attempt: what MetadataFrom returns, for tools and test kits
// that see messages outside a handler (package bustest).
func ReadMetadata(raw message.Metadata, uuid, topic, group string) Metadata {
	return *readMetadata(raw, uuid, topic, group)
}

// readMetadata decodes the CloudEvents attributes in raw, the metadata of
// the message with Watermill UUID uuid. Missing or malformed attributes leave
// their field zero: a message from another client is handled as long as its
// payload decodes.
func readMetadata(raw message.Metadata, uuid, topic, group string) *Metadata {
	md := &Metadata{
		ID:            raw.Get(MetaID),
		Event:         raw.Get(MetaType),
		Source:        raw.Get(MetaSource),
		Topic:         topic,
		Group:         group,
		Key:           raw.Get(MetaPartitionKey),
		CorrelationID: raw.Get(MetaCorrelationID),
		CausationID:   raw.Get(MetaCausationID),
		Attempt:       1,
		Raw:           raw,
	}
	if md.ID == "" {
		md.ID = uuid
	}
	if t, err := time.Parse(time.RFC3339Nano, raw.Get(MetaTime)); err == nil {
		md.PublishedAt = t
	}
	return md
}

// eventOf returns the metadata and payload of the event msg carries, for a
// codec of media type codecType: msg's own in binary content mode, or those
// in its body in CloudEvents structured mode, where the body's attributes
// come first and msg's metadata (the transport's, and busline's failure
// record) fills the rest. Content types compare by media type, ignoring case
// and parameters; a message without one is taken to be in the codec's.
func eventOf(msg *message.Message, codecType string) (message.Metadata, []byte, error) {
	ct := msg.Metadata.Get(MetaContentType)
	if ct == "" || ct == codecType { // the common case, without parsing
		return msg.Metadata, msg.Payload, nil
	}
	switch wire.MediaType(ct) {
	case wire.MediaType(codecType):
		return msg.Metadata, msg.Payload, nil
	case wire.BatchJSON:
		return nil, nil, wire.ErrBatch
	case wire.StructuredJSON:
	default:
		return nil, nil, fmt.Errorf("content-type %q, the codec reads %q", ct, codecType)
	}
	attrs, data, err := wire.ReadStructured(msg.Payload)
	if err != nil {
		return nil, nil, err
	}
	if !wire.SameMediaType(attrs[MetaContentType], codecType) {
		return nil, nil, fmt.Errorf("structured event with datacontenttype %q, the codec reads %q", attrs[MetaContentType], codecType)
	}
	md := make(message.Metadata, len(msg.Metadata)+len(attrs))
	for k, v := range msg.Metadata {
		md[k] = v
	}
	for k, v := range attrs {
		md[k] = v
	}
	return md, data, nil
}
