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

func TestConformance(t *testing.T) {
	t.Parallel() // alongside the private-node tests, which mostly wait for their broker
	requireBroker(t)
	transporttest.Run(t, transporttest.Harness{
		Kind: rabbitmq.Kind,
		Params: transports.OpenParams{
			Service: "conformance",
			Logger:  quietLogger(),
			Decode: func(into any) error {
				*(into.(*rabbitmq.Config)) = rabbitmq.Config{URL: transports.SecretURL(brokerURL()), QueueExpires: testQueueExpires}
				return nil
			},
		},
		New: func(t *testing.T) transports.Transport {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tr, err := rabbitmq.New(ctx, rabbitmq.Config{URL: transports.SecretURL(brokerURL()), Logger: quietLogger(), QueueExpires: testQueueExpires})
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
