package otelbus

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// busline's own attributes, beside the messaging conventions'.
const (
	// AttrAttempt is the attempt number of a process span: 1 for the first,
	// counting every failed attempt before it (immediate retries and
	// redeliveries).
	AttrAttempt = attribute.Key("busline.attempt")
	// AttrTier is the delayed-redelivery tier of the message: 0 on the main
	// topic and for a replay, n on the retry lane after the n-th delay.
	AttrTier = attribute.Key("busline.tier")
	// AttrEvent is the event name (ce_type).
	AttrEvent = attribute.Key("busline.event")
	// AttrReason is the failure class of a failed attempt or a lane move:
	// error, permanent, decode, panic, timeout or malformed.
	AttrReason = attribute.Key("busline.reason")
	// AttrLane is the lane a message moved to: retry or poison; on the
	// age gauge also main.
	AttrLane = attribute.Key("busline.lane")
	// AttrReplays counts the replays of a message from the poison lane.
	AttrReplays = attribute.Key("busline.replays")
	// AttrRetryKind says why an attempt is a retry: immediate (in place,
	// after a backoff), delayed (from the retry lane) or replay (from the
	// poison lane).
	AttrRetryKind = attribute.Key("busline.retry.kind")
	// AttrPosition is the transport's position of a consumed message where
	// the conventions have no attribute for it (the Redis stream entry id).
	AttrPosition = attribute.Key("busline.position")
	// AttrError is the error text of a lane move.
	AttrError = attribute.Key("busline.error")
	// AttrDelay is the delay of a scheduled publish, in seconds.
	AttrDelay = attribute.Key("busline.delay")
)

// EventLaneMove names the span event recorded when a message moves to its
// group's retry lane or poison lane.
const EventLaneMove = "busline.lane.move"

// The messaging.system values busline uses: the conventions' own for Kafka
// and RabbitMQ; for Redis, which has no registered value, and for the memory
// transport, the transport's kind ("redis", "memory").
func systemAttr(kind string) attribute.KeyValue {
	switch kind {
	case "kafka":
		return semconv.MessagingSystemKafka
	case "rabbitmq":
		return semconv.MessagingSystemRabbitMQ
	}
	return semconv.MessagingSystemKey.String(kind)
}

// errorType is err's error.type: the Go type at the end of its Unwrap
// chain, e.g. "*errors.errorString", as busline_error_type records it.
func errorType(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	if t := reflect.TypeOf(err); t != nil {
		return t.String()
	}
	return "_OTHER"
}

// position splits a Kafka "partition/offset" position.
func position(pos string) (partition string, offset int, ok bool) {
	p, o, found := strings.Cut(pos, "/")
	if !found {
		return "", 0, false
	}
	n, err := strconv.Atoi(o)
	if err != nil {
		return "", 0, false
	}
	return p, n, true
}
