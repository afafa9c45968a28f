package wire

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
)

// CloudEvents 1.0 attributes in binary content mode: every message busline
// publishes carries them as metadata (headers on RabbitMQ and Kafka, fields
// on Redis), so that a plain client in any language can produce and consume
// busline events. Each transport maps these keys to its protocol binding's
// header names on the wire; inside busline they are spelled here only.
const (
	MetaID            = "ce_id"            // unique message id (UUIDv7); also the Watermill message UUID
	MetaType          = "ce_type"          // the event name
	MetaSource        = "ce_source"        // the publishing service, a URI-reference
	MetaSpecVersion   = "ce_specversion"   // always "1.0"
	MetaTime          = "ce_time"          // publish time, RFC 3339 with nanoseconds, UTC
	MetaPartitionKey  = "ce_partitionkey"  // ordering key (CloudEvents partitioning extension)
	MetaCorrelationID = "ce_correlationid" // id shared by every message of one business flow
	MetaCausationID   = "ce_causationid"   // id of the message whose handler published this one
	MetaTraceParent   = "traceparent"      // W3C trace context, passed through when present
	MetaContentType   = "content-type"     // the payload's media type, e.g. application/json
)

// The W3C trace context of a message's creation, as the CloudEvents
// distributed-tracing extension carries it: attributes traceparent and
// tracestate, so ce_traceparent and ce_tracestate in binary mode. busline
// (package otelbus) writes these; it reads them first, then the plain W3C
// names MetaTraceParent and MetaTraceState that other OpenTelemetry
// instrumentations put in message headers.
const (
	MetaCETraceParent = AttributePrefix + "traceparent" // ce_traceparent
	MetaCETraceState  = AttributePrefix + "tracestate"  // ce_tracestate
	MetaTraceState    = "tracestate"                    // W3C tracestate, read when ce_tracestate is absent
)

// AttributePrefix is the prefix of CloudEvents attributes in busline's
// metadata: attribute "id" is "ce_id".
const AttributePrefix = "ce_"

// SpecVersion is the CloudEvents version busline writes.
const SpecVersion = "1.0"

// Media types of CloudEvents' JSON event format.
const (
	StructuredJSON = "application/cloudevents+json"       // one event in the body
	BatchJSON      = "application/cloudevents-batch+json" // an array of events in the body
)

// MediaType returns the media type of a content-type value, lower-cased and
// without parameters, so that "Application/JSON; charset=utf-8" reads as
// "application/json" (CloudEvents 1.0.3: consumers MUST treat the media type
// case-insensitively). A value that does not parse is returned lower-cased
// and trimmed up to its first ";".
func MediaType(contentType string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// SameMediaType reports whether two content-type values name the same media
// type, ignoring case and parameters.
func SameMediaType(a, b string) bool { return MediaType(a) == MediaType(b) }

// ErrBatch is returned by ReadStructured for a batch of events: a batch is
// one broker message, so its events could not be acked, retried or poisoned
// one by one; busline does not read batched mode.
var ErrBatch = errors.New("cloudevents batched mode is not supported: send one event per message")

// ReadStructured reads an event in CloudEvents structured mode (JSON event
// format, content-type application/cloudevents+json): it returns the
// event's context attributes and extensions as metadata under
// AttributePrefix (with datacontenttype as MetaContentType), and its data:
// the JSON value of "data" as bytes when the data is JSON, the text of a
// string "data" otherwise, or the decoded "data_base64".
func ReadStructured(body []byte) (md map[string]string, data []byte, err error) {
	var event map[string]json.RawMessage
	if err := json.Unmarshal(body, &event); err != nil {
		if len(body) > 0 && strings.TrimSpace(string(body))[0] == '[' {
			return nil, nil, ErrBatch
		}
		return nil, nil, fmt.Errorf("cloudevents structured mode: %w", err)
	}
	md = make(map[string]string, len(event))
	for name, raw := range event {
		if name == "data" || name == "data_base64" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			// Extensions may be numbers or booleans: keep their JSON text.
			s = string(raw)
		}
		if name == "datacontenttype" {
			md[MetaContentType] = s
			continue
		}
		md[AttributePrefix+name] = s
	}
	if md[MetaSpecVersion] == "" || md[MetaID] == "" || md[MetaType] == "" {
		return nil, nil, errors.New("cloudevents structured mode: specversion, id and type are required")
	}
	contentType := md[MetaContentType]
	if contentType == "" {
		contentType = "application/json" // the JSON format's default
		md[MetaContentType] = contentType
	}
	if b64, ok := event["data_base64"]; ok {
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return nil, nil, fmt.Errorf("cloudevents structured mode: data_base64: %w", err)
		}
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("cloudevents structured mode: data_base64: %w", err)
		}
		return md, data, nil
	}
	raw, ok := event["data"]
	if !ok {
		return md, nil, nil
	}
	if mt := MediaType(contentType); mt == "application/json" || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "/json") {
		return md, []byte(raw), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil, fmt.Errorf("cloudevents structured mode: data of %s must be a JSON string", contentType)
	}
	return md, []byte(s), nil
}
