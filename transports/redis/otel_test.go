package redis_test

import (
	"testing"

	"github.com/busline/busline/otelbus/otelbustest"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/redis"
)

// TestOpenTelemetry runs otelbus's cases on Redis: one connected trace
// through retries, the delayed set, the poison lane and a replay; metrics
// that count what happened; and gauges read through the Inspector.
func TestOpenTelemetry(t *testing.T) {
	otelbustest.Exercise(t, func(t *testing.T) transports.Transport { return open(t, redis.Config{}) })
}
