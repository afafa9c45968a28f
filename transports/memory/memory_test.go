package memory_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"go.uber.org/goleak"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
	"github.com/busline/busline/transports/transporttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, transporttest.Harness{
		Kind: memory.Kind,
		New:  func(*testing.T) transports.Transport { return memory.New(memory.Config{}) },
		Universal: tests.Features{
			ConsumerGroups:        true,
			GuaranteedOrder:       true,
			Persistent:            true,
			RequireSingleInstance: true,
		},
	})
}
