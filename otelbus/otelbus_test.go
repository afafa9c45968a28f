package otelbus_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/busline/busline/otelbus/otelbustest"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openMemory(t *testing.T) transports.Transport {
	tr := memory.New(memory.Config{})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// TestMemory runs the instrumentation cases on the memory transport.
func TestMemory(t *testing.T) {
	otelbustest.Exercise(t, openMemory)
}

// bare hides every optional interface of a transport, Inspector included.
type bare struct{ transports.Transport }

// TestGaugesWithoutInspector checks that a transport that cannot report
// backlogs gets no gauge at all, rather than zeros.
func TestGaugesWithoutInspector(t *testing.T) {
	otelbustest.Gauges(t, func(t *testing.T) transports.Transport { return bare{openMemory(t)} })
}
