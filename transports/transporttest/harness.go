package transporttest

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/busline/busline/transports"
)

// Harness describes the transport under test.
type Harness struct {
	// Kind is the kind the transport registers under; the suite opens one
	// through transports.Open with Params.
	Kind string

	// Params are passed to transports.Open for the registry case.
	Params transports.OpenParams

	// New returns a new transport connected to the broker under test. The
	// suite closes it at the end of the case. Required.
	New func(t *testing.T) transports.Transport

	// Universal configures Watermill's universal suite for the transport.
	Universal tests.Features

	// Timeout bounds each wait for a delivery. Default: 15s.
	Timeout time.Duration

	// MaxDuplicates is how many duplicate successful deliveries the mixed
	// failure case accepts out of 1,000 events. Default: 0.
	MaxDuplicates int

	// MaxLateness is how late past its due time a delayed redelivery or a
	// scheduled publish may be handled. Default: 1s.
	MaxLateness time.Duration
}

func (h *Harness) setDefaults() {
	if h.Timeout == 0 {
		h.Timeout = 15 * time.Second
	}
	if h.MaxLateness == 0 {
		h.MaxLateness = time.Second
	}
}

// open returns a new transport closed at the end of the test.
func (h *Harness) open(t *testing.T) transports.Transport {
	t.Helper()
	tr := h.New(t)
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("close transport: %v", err)
		}
	})
	return tr
}

// Run runs the whole conformance suite against the transport h describes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("transporttest.Harness.New is required")
	}
	h.setDefaults()
	t.Run("Universal", func(t *testing.T) { RunUniversal(t, h) })
	t.Run("Bus", func(t *testing.T) { RunBus(t, h) })
	t.Run("Pipeline", func(t *testing.T) { RunPipeline(t, h) })
	t.Run("Consumer", func(t *testing.T) { RunConsumer(t, h) })
	t.Run("Delay", func(t *testing.T) { RunDelay(t, h) })
	t.Run("Inspector", func(t *testing.T) { RunInspector(t, h) })
	t.Run("Batch", func(t *testing.T) { RunBatch(t, h) })
	t.Run("Limits", func(t *testing.T) { RunLimits(t, h) })
}

// testCase is one named case of a suite.
type testCase struct {
	name string
	fn   func(*testing.T, *Harness)
}

// runCases runs cases in parallel subtests, each with h's defaults.
func runCases(t *testing.T, h Harness, cases []testCase) {
	h.setDefaults()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, &h)
		})
	}
}

// RunUniversal runs Watermill's universal Pub/Sub suite over one transport:
// each constructor call takes a new publisher and subscriber from it.
func RunUniversal(t *testing.T, h Harness) {
	h.setDefaults()
	tr := h.open(t)
	newPubSub := func(t *testing.T, group string) (pub message.Publisher, sub message.Subscriber) {
		p, err := tr.Publisher()
		if err != nil {
			t.Fatalf("publisher: %v", err)
		}
		s, err := tr.Subscriber(group)
		if err != nil {
			t.Fatalf("subscriber for group %s: %v", group, err)
		}
		return p, s
	}
	tests.TestPubSub(t, h.Universal,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, "universal") },
		newPubSub,
	)
}

// waitTimeout returns a context that ends after the harness timeout.
func (h *Harness) waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	t.Cleanup(cancel)
	return ctx
}
