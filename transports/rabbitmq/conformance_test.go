package rabbitmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
	"github.com/busline/busline/transports/transporttest"
)

// conformanceMaxMessageBytes keeps the size-limit cases fast: a message
// at the limit still goes through the channels for large messages.
const conformanceMaxMessageBytes = 256 << 10

func TestConformance(t *testing.T) {
	t.Parallel() // alongside the private-node tests, which mostly wait for their broker
	requireBroker(t)
	transporttest.Run(t, transporttest.Harness{
		Kind: rabbitmq.Kind,
		Params: transports.OpenParams{
			Service: "conformance",
			Logger:  quietLogger(),
			Decode: func(into any) error {
				*(into.(*rabbitmq.Config)) = rabbitmq.Config{URL: transports.SecretURL(brokerURL()), QueueExpires: testQueueExpires, MaxMessageBytes: conformanceMaxMessageBytes}
				return nil
			},
		},
		New: func(t *testing.T) transports.Transport {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tr, err := rabbitmq.New(ctx, rabbitmq.Config{URL: transports.SecretURL(brokerURL()), Logger: quietLogger(), QueueExpires: testQueueExpires, MaxMessageBytes: conformanceMaxMessageBytes})
			if err != nil {
				t.Fatalf("rabbitmq.New: %v", err)
			}
			return tr
		},
		Universal: tests.Features{
			ConsumerGroups:                      true,
			GuaranteedOrder:                     true,
			GuaranteedOrderWithSingleSubscriber: true,
			Persistent:                          true,
		},
		Timeout: 30 * time.Second,
	})
}
