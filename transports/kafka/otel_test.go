package kafka_test

import (
	"testing"

	"github.com/busline/busline/otelbus/otelbustest"
	"github.com/busline/busline/transports"
)

// TestOpenTelemetry runs otelbus's cases on Kafka: one connected trace
// through retries, the wait topics, the poison lane and a replay, and
// metrics that count what happened.
func TestOpenTelemetry(t *testing.T) {
	cfg := testConfig(brokers(t))
	otelbustest.Exercise(t, func(t *testing.T) transports.Transport { return open(t, cfg) })
}
