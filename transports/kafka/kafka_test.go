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
	// go-metrics, which Sarama uses, starts one global ticker goroutine for
	// the life of the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func TestConformance(t *testing.T) {
	addrs := brokers(t)
	cfg := testConfig(addrs)
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
		Timeout: 30 * time.Second,
	})
}
