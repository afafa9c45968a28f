package rabbitmq

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/wire"
)

// uuidHeader carries the Watermill message UUID under the key
// watermill-amqp uses (DefaultMessageUUIDHeaderKey), so that plain
// watermill-amqp applications and busline read each other's messages.
const uuidHeader = "_watermill_message_uuid"

// metaContentType and metaID are the metadata keys that are also written
// as AMQP properties.
const (
	metaContentType = wire.MetaContentType
	metaID          = wire.MetaID
)

// The prefixes of CloudEvents attributes in AMQP headers. busline writes
// HeaderPrefix (Config.HeaderPrefix) and reads all of them.
const (
	// PrefixAMQP is the AMQP protocol binding's: "cloudEvents:id"
	// (CloudEvents AMQP binding 1.0.2 and 1.0.3). The default.
	PrefixAMQP = "cloudEvents:"
	// PrefixAMQPUnderscore is the AMQP binding 1.0.3's alternative,
	// "cloudEvents_id", for clients that cannot use ":" in names.
	PrefixAMQPUnderscore = "cloudEvents_"
	// PrefixKnative is knative eventing-rabbitmq's: "ce-id".
	PrefixKnative = "ce-"
	// PrefixBusline is what busline wrote before, and its metadata key
	// prefix: "ce_id".
	PrefixBusline = wire.AttributePrefix
)

// headerPrefixes are the prefixes read, longest first so that
// "cloudEvents_" is not taken for another.
var headerPrefixes = []string{PrefixAMQPUnderscore, PrefixAMQP, PrefixKnative, PrefixBusline}

// toPublishing writes msg the way watermill-amqp's DefaultMarshaler does
// (metadata as string headers, the UUID in a header, persistent delivery
// mode), with the CloudEvents attributes under prefix, and also sets the
// content-type and message-id properties for plain clients.
func toPublishing(msg *message.Message, persistent bool, prefix string) amqp.Publishing {
	headers := make(amqp.Table, len(msg.Metadata)+1)
	for k, v := range msg.Metadata {
		if prefix != PrefixBusline {
			if name, ok := strings.CutPrefix(k, wire.AttributePrefix); ok {
				k = prefix + name
			}
		}
		headers[k] = v
	}
	headers[uuidHeader] = msg.UUID
	p := amqp.Publishing{
		Headers:     headers,
		Body:        msg.Payload,
		ContentType: msg.Metadata.Get(metaContentType),
		MessageId:   msg.Metadata.Get(metaID),
	}
	if p.MessageId == "" {
		p.MessageId = msg.UUID
	}
	if persistent {
		p.DeliveryMode = amqp.Persistent
	}
	return p
}

// toMessage turns a delivery into a message. Unlike watermill-amqp's
// marshaler it never fails: a header that is not a string (x-death added
// by dead-lettering, x-delivery-count added by quorum queues, a number or
// table set by another client) becomes its text, so the message is
// handled instead of nack-looping. The transport's own headers are
// dropped: a mandatory publish's id, and on a message that came through the
// delay levels the destination and the dead-lettering records they added.
// The UUID comes from the Watermill
// header, else ce_id, else the message-id property, else a new UUID that
// becomes the message's ce_id; a content-type property fills a missing
// content-type header.
func toMessage(d *amqp.Delivery) *message.Message {
	id, _ := d.Headers[uuidHeader].(string)
	for _, prefix := range headerPrefixes {
		if id == "" {
			id, _ = d.Headers[prefix+"id"].(string)
		}
	}
	if id == "" {
		id = d.MessageId
	}
	anonymous := id == ""
	if anonymous {
		// A plain client sent neither: the message gets an id now, kept as
		// its ce_id through the retry and poison lanes, so that it can be
		// shown, replayed and purged on its own.
		id = uuid.NewString()
	}
	msg := message.NewMessage(id, d.Body)
	_, delayed := d.Headers[delayToHeader]
	for k, v := range d.Headers {
		if k == uuidHeader || k == publishIDHeader || delayed && (k == delayToHeader || slices.Contains(deathHeaders, k)) {
			continue
		}
		msg.Metadata[metadataKey(k)] = headerText(v)
	}
	if _, ok := msg.Metadata[metaContentType]; !ok && d.ContentType != "" {
		msg.Metadata[metaContentType] = d.ContentType
	}
	if anonymous {
		msg.Metadata[metaID] = id
	}
	return msg
}

// metadataKey is the metadata key of AMQP header k: a CloudEvents attribute
// under any of headerPrefixes becomes "ce_" and its name, whatever the
// producer's binding.
func metadataKey(k string) string {
	for _, prefix := range headerPrefixes {
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
			return wire.AttributePrefix + name
		}
	}
	return k
}

// headerText renders an AMQP field value as text: strings and byte slices
// as they are, numbers and booleans in Go's syntax, timestamps in RFC 3339,
// tables and arrays as JSON.
func headerText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return fmt.Sprint(v)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case amqp.Decimal:
		return fmt.Sprintf("%de-%d", v.Value, v.Scale)
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// jsonable converts AMQP tables and arrays into values encoding/json
// renders readably (byte slices as text, not base64).
func jsonable(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = jsonable(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = jsonable(e)
		}
		return a
	case []byte:
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case amqp.Decimal:
		return headerText(v)
	}
	return v
}
