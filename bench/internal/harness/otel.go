package harness

import (
	"context"
	"errors"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/otelbus"
)

// newObserver returns otelbus over SDK providers that do the work of a
// production set-up short of exporting: every span sampled and recorded
// but given to no exporter, every metric aggregated into a manual reader
// that is never collected. shutdown releases both providers.
func newObserver() (obs bus.Observer, shutdown func(context.Context) error, err error) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	shutdown = func(ctx context.Context) error { return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx)) }
	o, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
	if err != nil {
		_ = shutdown(context.Background())
		return nil, nil, fmt.Errorf("otelbus: %w", err)
	}
	return o, shutdown, nil
}
