package kafka_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"go.uber.org/goleak"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/transports/transporttest"
)

func TestMain(m *testing.M) {
	// go-metrics, which Sarama (the CloudEvents SDK's Kafka binding) uses,
	// starts one global ticker goroutine that never ends.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func TestConformance(t *testing.T) {
	addrs := brokers(t)
	cfg := testConfig(addrs)
	// Frequent heartbeats: a member learns of a rebalance sooner, so an
	// instance that joins a running group takes work within a few hundred
	// milliseconds (CompetingConsumers).
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.MaxMessageBytes = 256 << 10 // a modest limit keeps the size cases fast
	transporttest.Run(t, transporttest.Harness{
		Kind: kafka.Kind,
		Params: transports.OpenParams{
			Logger: quiet(),
			Decode: func(into any) error {
				*into.(*kafka.Config) = kafka.Config{Brokers: addrs}
				return nil
			},
		},
		New: func(t *testing.T) transports.Transport { return open(t, cfg) },
		Universal: tests.Features{
			ConsumerGroups:                      true,
			GuaranteedOrderWithSingleSubscriber: false,
			Persistent:                          true,
		},
		Timeout: 60 * time.Second, // generous: a loaded CI machine slows the synchronous lane writes
	})
}
