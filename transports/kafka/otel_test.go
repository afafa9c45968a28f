package kafka_test

import (
	"testing"

	"github.com/busline/busline/otelbus/otelbustest"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
)

// The Kafka transport is an Inspector, so otelbus's Gauges case checks the
// lag, lane depth and poison depth gauges instead of their absence.
var _ transports.Inspector = (*kafka.Transport)(nil)

// TestOpenTelemetry runs otelbus's cases on Kafka: one connected trace
// through retries, the wait topics, the poison lane and a replay, metrics
// that count what happened, and the backlog gauges (5 on the topic, 2 in
// the retry lane, 3 in the poison lane).
func TestOpenTelemetry(t *testing.T) {
	cfg := testConfig(brokers(t))
	otelbustest.Exercise(t, func(t *testing.T) transports.Transport { return open(t, cfg) })
}
