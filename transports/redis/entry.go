package redis

import (
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/wire"
)

// Fields of a stream entry besides the metadata.
const (
	// FieldPayload holds the message payload.
	FieldPayload = "payload"
	// FieldUUID holds the Watermill message UUID when it differs from the
	// ce_id metadata. When both are absent the entry id is the UUID.
	FieldUUID = "busline_uuid"
)

// watermillUUIDField marks entries written by watermill-redisstream, whose
// metadata is msgpack in one "metadata" field: busline does not read it.
const watermillUUIDField = "_watermill_message_uuid"

// encode returns XADD's field-value list for msg: metadata in key order, the
// UUID when ce_id does not carry it, then the payload.
func encode(msg *message.Message) ([]any, error) {
	keys := make([]string, 0, len(msg.Metadata))
	for k := range msg.Metadata {
		switch k {
		case FieldPayload, FieldUUID:
			return nil, fmt.Errorf("metadata key %q is reserved by the redis transport for the entry's %s; rename the key", k, k)
		case "":
			return nil, fmt.Errorf("empty metadata key on message %s: Redis fields need a name", msg.UUID)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]any, 0, 2*len(keys)+4)
	for _, k := range keys {
		vals = append(vals, k, msg.Metadata[k])
	}
	if msg.UUID != msg.Metadata.Get(wire.MetaID) {
		vals = append(vals, FieldUUID, msg.UUID)
	}
	return append(vals, FieldPayload, []byte(msg.Payload)), nil
}

// decode reads an entry as a message. The entry id is set as metadata
// wire.PositionMetadataKey.
func decode(e goredis.XMessage) (*message.Message, error) {
	payload, ok := e.Values[FieldPayload]
	if !ok {
		return nil, &MalformedEntryError{ID: e.ID, Reason: `no "payload" field (write the message body as field payload)`}
	}
	if _, ok := e.Values[watermillUUIDField]; ok {
		return nil, &MalformedEntryError{ID: e.ID, Reason: "metadata encoded by watermill-redisstream (msgpack in field \"metadata\"), which busline does not read: write each metadata entry as its own field"}
	}
	md := make(message.Metadata, len(e.Values))
	for k, v := range e.Values {
		if k == FieldPayload || k == FieldUUID {
			continue
		}
		if k == "" {
			return nil, &MalformedEntryError{ID: e.ID, Reason: "a field with an empty name"}
		}
		s, ok := v.(string)
		if !ok {
			return nil, &MalformedEntryError{ID: e.ID, Reason: fmt.Sprintf("field %q has a %T value", k, v)}
		}
		md[k] = s
	}
	body, ok := payload.(string)
	if !ok {
		return nil, &MalformedEntryError{ID: e.ID, Reason: fmt.Sprintf("payload has a %T value", payload)}
	}
	uuid, _ := e.Values[FieldUUID].(string)
	if uuid == "" {
		uuid = md.Get(wire.MetaID)
	}
	if uuid == "" {
		uuid = e.ID
	}
	msg := message.NewMessage(uuid, []byte(body))
	md[wire.PositionMetadataKey] = e.ID
	msg.Metadata = md
	return msg, nil
}

// poisonValues returns the poison-lane entry of an entry that could not be
// read: its fields as they were, a payload (empty if it had none) and the
// failure metadata with reason malformed.
func poisonValues(e goredis.XMessage, topic, group string, cause error, now time.Time) []any {
	md := message.Metadata{}
	var payload string
	for k, v := range e.Values {
		s := fmt.Sprint(v)
		switch k {
		case FieldPayload:
			payload = s
		case "":
		case watermillUUIDField:
			// Renamed, or the poison entry would be unreadable in turn.
			md["busline_original"+k] = s
		default:
			md[k] = s
		}
	}
	f := wire.Failure{FirstFailure: now, LastFailure: now}
	f.Reason = wire.ReasonMalformed
	f.Error = cause.Error()
	f.ErrorType = fmt.Sprintf("%T", cause)
	f.Attempts = 1
	f.Group = group
	f.Topic = topic
	f.Position = e.ID
	f.Write(md)
	if md.Get(wire.MetaID) == "" && md.Get(FieldUUID) == "" {
		md[FieldUUID] = e.ID
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]any, 0, 2*len(keys)+2)
	for _, k := range keys {
		vals = append(vals, k, md[k])
	}
	return append(vals, FieldPayload, payload)
}
