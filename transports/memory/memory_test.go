package memory_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
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
	t.Parallel()
	transporttest.Run(t, transporttest.Harness{
		Kind: memory.Kind,
		// A limit, so that the size cases run here too.
		New: func(*testing.T) transports.Transport { return memory.New(memory.Config{MaxMessageBytes: 256 << 10}) },
		Universal: tests.Features{
			ConsumerGroups:        true,
			GuaranteedOrder:       true,
			Persistent:            true,
			RequireSingleInstance: true,
		},
	})
}

// TestBusOverChannels runs the bus cases with subscribers that are only
// Watermill subscribers, as a third-party transport's may be: the bus then
// consumes through the Subscribe channel instead of transports.Consumer.
func TestBusOverChannels(t *testing.T) {
	h := transporttest.Harness{
		Kind: memory.Kind,
		New: func(*testing.T) transports.Transport {
			return channelOnly{memory.New(memory.Config{})}
		},
	}
	t.Run("Bus", func(t *testing.T) { transporttest.RunBus(t, h) })
	t.Run("Pipeline", func(t *testing.T) { transporttest.RunPipeline(t, h) })
}

// channelOnly hides transports.Consumer from the bus.
type channelOnly struct{ *memory.Transport }

func (c channelOnly) Subscriber(group string) (message.Subscriber, error) {
	s, err := c.Transport.Subscriber(group)
	if err != nil {
		return nil, err
	}
	if _, ok := s.(transports.Consumer); !ok {
		return nil, errors.New("the memory subscriber is no longer a transports.Consumer: this test is moot")
	}
	return struct{ message.Subscriber }{s}, nil
}

// TestWithoutDelayer runs the pipeline and delay cases on a transport that
// cannot delay on the broker, as a third-party one may not: redeliveries
// then wait in the retry lane's consumer, bounded and stop-aware, and
// scheduled publish is refused.
func TestWithoutDelayer(t *testing.T) {
	t.Parallel()
	h := transporttest.Harness{
		Kind: memory.Kind,
		New: func(*testing.T) transports.Transport {
			tr := memory.New(memory.Config{})
			return noDelayer{Transport: tr, GroupProvisioner: tr, GroupRemover: tr}
		},
	}
	t.Run("Pipeline", func(t *testing.T) { transporttest.RunPipeline(t, h) })
	t.Run("Delay", func(t *testing.T) { transporttest.RunDelay(t, h) })
}

// noDelayer hides transports.Delayer from the bus.
type noDelayer struct {
	transports.Transport
	transports.GroupProvisioner
	transports.GroupRemover
}

func (n noDelayer) Features() transports.Features {
	f := n.Transport.Features()
	f.NativeDelay, f.MaxDelay = false, 0
	return f
}
