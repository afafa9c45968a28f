package redis

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack"

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

// The fields of watermill-redisstream's entries (its default marshaller):
// the message UUID, the metadata as one msgpack map, and "payload". An entry
// with watermillUUIDField is read as one of these; Config.WatermillCompatible
// writes them too.
const (
	watermillUUIDField     = "_watermill_message_uuid"
	watermillMetadataField = "metadata"
)

// encode returns XADD's field-value list for msg: metadata in key order, the
// UUID when ce_id does not carry it, then the payload. With watermill (see
// Config.WatermillCompatible) it also writes watermill-redisstream's UUID
// and msgpack metadata fields, and the UUID always travels in the former.
func encode(msg *message.Message, watermill bool) ([]any, error) {
	keys := make([]string, 0, len(msg.Metadata))
	for k := range msg.Metadata {
		switch {
		case k == FieldPayload, k == FieldUUID, k == watermillUUIDField, watermill && k == watermillMetadataField:
			return nil, fmt.Errorf("metadata key %q is reserved by the redis transport for the entry's %s; rename the key", k, k)
		case k == "":
			return nil, fmt.Errorf("empty metadata key on message %s: Redis fields need a name", msg.UUID)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]any, 0, 2*len(keys)+6)
	for _, k := range keys {
		vals = append(vals, k, msg.Metadata[k])
	}
	switch {
	case watermill:
		var packed bytes.Buffer
		// Sorted, so that a message encodes the same each time (a delayed
		// member stored twice is stored once).
		if err := msgpack.NewEncoder(&packed).SortMapKeys(true).Encode(map[string]string(msg.Metadata)); err != nil {
			return nil, fmt.Errorf("msgpack metadata for watermill-redisstream: %w", err)
		}
		vals = append(vals, watermillUUIDField, msg.UUID, watermillMetadataField, packed.Bytes())
	case msg.UUID != msg.Metadata.Get(wire.MetaID):
		vals = append(vals, FieldUUID, msg.UUID)
	}
	return append(vals, FieldPayload, []byte(msg.Payload)), nil
}

// decode reads an entry as a message: busline's (a field per metadata key)
// or watermill-redisstream's (UUID and msgpack metadata fields, see
// watermillUUIDField), or both. The entry id is set as metadata
// wire.PositionMetadataKey.
func decode(e goredis.XMessage) (*message.Message, error) {
	wmUUID, watermill := e.Values[watermillUUIDField]
	payload, ok := e.Values[FieldPayload]
	if !ok && !watermill { // watermill-redisstream reads a missing payload as empty
		return nil, &MalformedEntryError{ID: e.ID, Reason: `no "payload" field (write the message body as field payload)`}
	} else if !ok {
		payload = ""
	}
	md := make(message.Metadata, len(e.Values))
	if watermill {
		packed, _ := e.Values[watermillMetadataField].(string)
		if packed != "" {
			if err := msgpack.Unmarshal([]byte(packed), &md); err != nil {
				return nil, &MalformedEntryError{ID: e.ID, Reason: fmt.Sprintf("field %q of a watermill-redisstream entry is not a msgpack map of strings: %v", watermillMetadataField, err)}
			}
		}
	}
	for k, v := range e.Values {
		switch {
		case k == FieldPayload, k == FieldUUID:
			continue
		case watermill && (k == watermillUUIDField || k == watermillMetadataField):
			continue
		case k == "":
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
		uuid, _ = wmUUID.(string)
	}
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
