package harness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/busline/busline/bench/internal/harness"
	"github.com/busline/busline/bus"
	"github.com/busline/busline/otelbus"
	"github.com/busline/busline/transports/memory"
)

// The round-trip benchmarks publish one message and wait until its handler
// ran, b.N times, on the memory transport: with -benchmem they give the
// allocations and bytes of one message's whole path, publisher to handler.

const roundTripTimeout = 10 * time.Second

func BenchmarkRoundTripBuslineMemory(b *testing.B) { buslineRoundTrip(b, nil) }

// BenchmarkRoundTripBuslineOtelMemory is the busline round trip with
// otelbus on, as the busline-otel way sets it up: every message traced
// (always sampled, no exporter) and metered (a manual reader).
func BenchmarkRoundTripBuslineOtelMemory(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	defer func() { _ = mp.Shutdown(context.Background()) }()
	obs, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	buslineRoundTrip(b, obs)
}

func buslineRoundTrip(b *testing.B, obs bus.Observer) {
	t := memory.New(memory.Config{})
	defer func() { _ = t.Close() }()
	bs, err := bus.New(t, bus.Config{Service: "bench", Topics: map[string]string{"bench.sample": "rt"}, Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	handled := make(chan struct{})
	if err := bus.Subscribe(bs, "g", func(context.Context, harness.Sample) error {
		handled <- struct{}{}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- bs.Run(context.Background()) }()
	<-bs.Running()
	e := harness.Sample{Pad: strings.Repeat("x", 216)} // 256 bytes of JSON
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e.SentAt = time.Now().UnixNano()
		if err := bus.Publish(ctx, bs, e); err != nil {
			b.Fatal(err)
		}
		wait(b, handled)
	}
	b.StopTimer()
	if err := bs.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRoundTripRouterMemory(b *testing.B) {
	t := memory.New(memory.Config{})
	defer func() { _ = t.Close() }()
	if err := t.ProvisionGroup(context.Background(), "rt", "g"); err != nil {
		b.Fatal(err)
	}
	pub, err := t.Publisher()
	if err != nil {
		b.Fatal(err)
	}
	sub, err := t.Subscriber("g")
	if err != nil {
		b.Fatal(err)
	}
	routerRoundTrip(b, pub, sub)
}

func BenchmarkRoundTripWatermillGoChannel(b *testing.B) {
	gc := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer func() { _ = gc.Close() }()
	routerRoundTrip(b, gc, gc)
}

// routerRoundTrip runs the round trip through a plain Watermill router with
// no middleware.
func routerRoundTrip(b *testing.B, pub message.Publisher, sub message.Subscriber) {
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	handled := make(chan struct{})
	router.AddConsumerHandler("rt", "rt", sub, func(*message.Message) error {
		handled <- struct{}{}
		return nil
	})
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.Background()) }()
	<-router.Running()
	payload := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if err := pub.Publish("rt", message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			b.Fatal(err)
		}
		wait(b, handled)
	}
	b.StopTimer()
	if err := router.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
}

func wait(b *testing.B, handled <-chan struct{}) {
	select {
	case <-handled:
	case <-time.After(roundTripTimeout):
		b.Fatalf("message not handled within %v", roundTripTimeout)
	}
}
