package bus

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// CloudEvents 1.0 attributes in binary content mode: every message busline
// publishes carries them as metadata (headers on RabbitMQ and Kafka, fields
// on Redis), so that a plain client in any language can produce and consume
// busline events. Metadata keys that busline's failure pipeline adds use the
// busline_ prefix and are listed in package middleware.
const (
	MetaID            = "ce_id"            // unique message id (UUIDv7); also the Watermill message UUID
	MetaType          = "ce_type"          // the event name
	MetaSource        = "ce_source"        // the publishing service
	MetaSpecVersion   = "ce_specversion"   // always "1.0"
	MetaTime          = "ce_time"          // publish time, RFC 3339 with nanoseconds, UTC
	MetaPartitionKey  = "ce_partitionkey"  // ordering key (CloudEvents partitioning extension)
	MetaCorrelationID = "ce_correlationid" // id shared by every message of one business flow
	MetaCausationID   = "ce_causationid"   // id of the message whose handler published this one
	MetaTraceParent   = "traceparent"      // W3C trace context, passed through when present
	MetaContentType   = "content-type"     // the codec's MIME type, e.g. application/json
)

// SpecVersion is the CloudEvents version busline writes.
const SpecVersion = "1.0"

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

func withMetadata(ctx context.Context, md *Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md)
}

// readMetadata decodes the CloudEvents attributes of msg. Missing or
// malformed attributes leave their field zero: a message from another client
// is handled as long as its payload decodes.
func readMetadata(msg *message.Message, topic, group string) *Metadata {
	md := &Metadata{
		ID:            msg.Metadata.Get(MetaID),
		Event:         msg.Metadata.Get(MetaType),
		Source:        msg.Metadata.Get(MetaSource),
		Topic:         topic,
		Group:         group,
		Key:           msg.Metadata.Get(MetaPartitionKey),
		CorrelationID: msg.Metadata.Get(MetaCorrelationID),
		CausationID:   msg.Metadata.Get(MetaCausationID),
		Attempt:       1,
		Raw:           msg.Metadata,
	}
	if md.ID == "" {
		md.ID = msg.UUID
	}
	if t, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaTime)); err == nil {
		md.PublishedAt = t
	}
	return md
}
