package otelbus

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/wire"
)

// carrier is a propagation.TextMapCarrier over message metadata. It writes
// the W3C keys under the CloudEvents distributed-tracing extension's names
// (ce_traceparent, ce_tracestate) and reads those first, then the plain W3C
// names; any other key (baggage) is used as it is.
type carrier message.Metadata

// Get returns the value of key.
func (c carrier) Get(key string) string {
	if ce := ceKey(key); ce != "" {
		if v, ok := c[ce]; ok {
			return v
		}
	}
	return c[key]
}

// Set stores value under key, or its CloudEvents name.
func (c carrier) Set(key, value string) {
	if ce := ceKey(key); ce != "" {
		c[ce] = value
		return
	}
	c[key] = value
}

// Keys lists the keys Get reads.
func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// ceKey returns the CloudEvents name of a W3C trace-context key, or "".
func ceKey(key string) string {
	switch key {
	case wire.MetaTraceParent:
		return wire.MetaCETraceParent
	case wire.MetaTraceState:
		return wire.MetaCETraceState
	}
	return ""
}
