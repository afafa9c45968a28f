package rabbitmq_test

import (
	"testing"

	"github.com/busline/busline/otelbus/otelbustest"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// TestOpenTelemetry runs otelbus's cases on RabbitMQ: one connected trace
// through retries, the delay levels, the poison lane and a replay, and
// metrics that count what happened.
func TestOpenTelemetry(t *testing.T) {
	requireBroker(t)
	otelbustest.Exercise(t, func(t *testing.T) transports.Transport {
		return newTransport(t, rabbitmq.Config{URL: transports.SecretURL(brokerURL()), Logger: quietLogger(), QueueExpires: testQueueExpires})
	})
}
