package otelbus_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/otelbus"
	"github.com/busline/busline/transports/memory"
)

type benchEvent struct {
	N int `json:"n"`
}

func (benchEvent) EventName() string { return "otelbus.bench" }

// BenchmarkEndToEnd publishes b.N events one by one on the memory transport
// and waits until a handler took each, without an Observer (Off) and with
// otelbus tracing every message (always sampled, no exporter) and recording
// metrics into a reader nobody collects (On). The ratio of their msg/s is
// the cost of the instrumentation; Off's allocations are the bus's own.
func BenchmarkEndToEnd(b *testing.B) {
	b.Run("Off", func(b *testing.B) { benchEndToEnd(b, nil) })
	b.Run("On", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		defer tp.Shutdown(context.Background())
		defer mp.Shutdown(context.Background())
		obs, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		benchEndToEnd(b, obs)
	})
}

func benchEndToEnd(b *testing.B, obs bus.Observer) {
	tr := memory.New(memory.Config{})
	defer tr.Close()
	cfg := bus.Config{Service: "bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if obs != nil {
		cfg.Observer = obs
	}
	bb, err := bus.New(tr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	done := make(chan struct{})
	want := int64(b.N)
	if err := bus.Subscribe(bb, "sink", func(context.Context, benchEvent) error {
		if handled.Add(1) == want {
			close(done)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- bb.Run(ctx) }()
	<-bb.Running()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := bus.Publish(ctx, bb, benchEvent{N: i}); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	cancel()
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSDKSpans is the floor under BenchmarkEndToEnd/On: what the
// OpenTelemetry SDK itself costs for the two spans of a message (a send and
// a process span with ten attributes each, always sampled, no exporter),
// with no busline code. On the memory transport, whose round trip costs a
// few microseconds, this floor alone is most of the instrumentation's cost.
func BenchmarkSDKSpans(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("bench")
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		attrs[i] = attribute.Int("k"+strconv.Itoa(i), i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sctx, send := tracer.Start(ctx, "send orders", trace.WithSpanKind(trace.SpanKindProducer))
		send.SetAttributes(attrs...)
		send.End()
		_, process := tracer.Start(sctx, "process orders", trace.WithSpanKind(trace.SpanKindConsumer))
		process.SetAttributes(attrs...)
		process.End()
	}
}
