// Package otelbustest holds the instrumentation cases every transport can
// run: a message's journey through retries, the retry lane, the poison lane
// and a replay must form one connected trace with the right spans and
// attributes, the metrics must count what happened, and the gauges must read
// a known backlog. A transport's tests call Exercise with a function that
// opens the transport; the memory transport runs it in package otelbus.
package otelbustest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/otelbus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/transporttest"
	"github.com/busline/busline/wire"
)

// Event is the event the cases publish.
type Event struct {
	N int `json:"n"`
}

// EventName returns "busline.oteltest".
func (Event) EventName() string { return "busline.oteltest" }

// Env is one case's set-up: a bus on the transport, observed by an
// otelbus.Observer that records into Spans and Reader.
type Env struct {
	T         *testing.T
	Transport transports.Transport
	Bus       *bus.Bus
	Topic     string // the event's topic, unique to the case
	Group     string // the consumer group, unique to the case
	Spans     *tracetest.SpanRecorder
	Reader    *sdkmetric.ManualReader
	Meters    *sdkmetric.MeterProvider
}

// Setup opens a transport with open and a bus on it observed in mode,
// retrying twice in place and redelivering once from the retry lane (after
// delay) before the poison lane. Everything is closed at the test's end.
func Setup(t *testing.T, open func(t *testing.T) transports.Transport, mode otelbus.Mode, delay time.Duration) *Env {
	t.Helper()
	id := uuid.NewString()[:8]
	e := &Env{
		T:         t,
		Transport: open(t),
		Topic:     "oteltest." + id,
		Group:     "billing-" + id,
		Spans:     tracetest.NewSpanRecorder(),
		Reader:    sdkmetric.NewManualReader(),
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(e.Spans))
	e.Meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.Reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = e.Meters.Shutdown(context.Background())
	})
	obs, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(e.Meters), otelbus.WithMode(mode))
	if err != nil {
		t.Fatalf("otelbus.New: %v", err)
	}
	e.Bus, err = bus.New(e.Transport, bus.Config{
		Service:  "oteltest",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observer: obs,
		Topics:   map[string]string{Event{}.EventName(): e.Topic},
		Retry:    middleware.RetryPolicy{Attempts: 2, Backoff: middleware.Backoff{Initial: time.Millisecond, Max: time.Millisecond}},
		Delays:   []time.Duration{delay},
	})
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	t.Cleanup(func() { _ = e.Bus.Close(context.Background()) })
	return e
}

// Exercise runs every case on transports opened by open. Each case opens
// its own transport and uses its own topic and group.
func Exercise(t *testing.T, open func(t *testing.T) transports.Transport) {
	t.Run("JourneyContinueTrace", func(t *testing.T) { Journey(t, open, otelbus.ContinueTrace) })
	t.Run("JourneyLinkTrace", func(t *testing.T) { Journey(t, open, otelbus.LinkTrace) })
	t.Run("Gauges", func(t *testing.T) { Gauges(t, open) })
}

// Journey publishes one message whose handler fails twice on the topic
// (into the retry lane), twice on the retry lane (into the poison lane),
// then succeeds once the message is replayed; it checks the trace and the
// metrics that journey leaves. The recorded trace is logged (go test -v).
func Journey(t *testing.T, open func(t *testing.T) transports.Transport, mode otelbus.Mode) {
	e := Setup(t, open, mode, 20*time.Millisecond)
	var healed atomic.Bool
	handled := make(chan int, 8)
	err := bus.Subscribe(e.Bus, e.Group, func(ctx context.Context, ev Event) error {
		md, _ := bus.MetadataFrom(ctx)
		handled <- md.Attempt
		if !healed.Load() {
			return errors.New("card declined")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	transporttest.Start(t, e.Bus)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Publish(ctx, e.Bus, Event{N: 1}, bus.WithCorrelationID("flow-1")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	retryLane, poisonLane := wire.RetryTopic(e.Topic, e.Group), wire.PoisonTopic(e.Topic, e.Group)
	e.WaitSpan(ctx, "send "+poisonLane, 1)
	healed.Store(true)
	lane, err := bus.NewPoisonLane(e.Transport, e.Topic, e.Group)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := lane.Replay(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1 message replayed", n, err)
	}
	e.WaitSpan(ctx, "process "+retryLane, 3)
	var attempts []int
	for len(handled) > 0 {
		attempts = append(attempts, <-handled)
	}
	if want := []int{1, 2, 3, 4, 5}; !equal(attempts, want) {
		t.Errorf("handler attempts = %v, want %v", attempts, want)
	}

	spans := e.Spans.Ended()
	logTrace(t, spans)
	send := only(t, spans, "send "+e.Topic)
	retrySend := only(t, spans, "send "+retryLane)
	poisonSend := only(t, spans, "send "+poisonLane)
	var process []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindConsumer {
			process = append(process, s)
		}
	}
	if len(process) != 5 {
		t.Fatalf("%d process spans, want 5 (one per attempt)", len(process))
	}
	sortByStart(process)
	kind := e.Bus.TransportKind()
	msgID := attr(send, "messaging.message.id").AsString()
	if msgID == "" {
		t.Errorf("send span has no messaging.message.id")
	}

	// The send span: a root PRODUCER span with the conventions' attributes.
	checkKind(t, send, trace.SpanKindProducer)
	if send.Parent().IsValid() {
		t.Errorf("send span has parent %v, want none (published outside any span)", send.Parent())
	}
	checkAttrs(t, send, map[string]any{
		"messaging.system": kind, "messaging.operation.name": "send", "messaging.operation.type": "send",
		"messaging.destination.name": e.Topic, "messaging.message.conversation_id": "flow-1",
	})

	// One CONSUMER span per attempt, linked to the send span, parented by it
	// in ContinueTrace and roots of their own traces in LinkTrace.
	wantDest := []string{e.Topic, e.Topic, retryLane, retryLane, retryLane}
	wantTier := []int64{0, 0, 1, 1, 0}
	for i, p := range process {
		checkKind(t, p, trace.SpanKindConsumer)
		if p.Name() != "process "+wantDest[i] {
			t.Errorf("attempt %d: span %q, want %q", i+1, p.Name(), "process "+wantDest[i])
		}
		if !linksTo(p, send.SpanContext()) {
			t.Errorf("attempt %d: span has no link to the send span", i+1)
		}
		switch mode {
		case otelbus.ContinueTrace:
			if p.SpanContext().TraceID() != send.SpanContext().TraceID() || p.Parent().SpanID() != send.SpanContext().SpanID() {
				t.Errorf("attempt %d: trace %s parent %s, want the send span's trace %s and id %s", i+1,
					p.SpanContext().TraceID(), p.Parent().SpanID(), send.SpanContext().TraceID(), send.SpanContext().SpanID())
			}
		case otelbus.LinkTrace:
			if p.Parent().IsValid() || p.SpanContext().TraceID() == send.SpanContext().TraceID() {
				t.Errorf("attempt %d: parent %v in trace %s, want a new root trace linked to %s", i+1,
					p.Parent(), p.SpanContext().TraceID(), send.SpanContext().TraceID())
			}
		}
		want := map[string]any{
			"messaging.system": kind, "messaging.operation.name": "process", "messaging.operation.type": "process",
			"messaging.destination.name": wantDest[i], "messaging.consumer.group.name": e.Group,
			"messaging.message.id": msgID, "messaging.message.conversation_id": "flow-1",
			"busline.attempt": int64(i + 1), "busline.tier": wantTier[i], "busline.event": Event{}.EventName(),
		}
		if i < 4 {
			want["error.type"] = "*errors.errorString"
			want["busline.reason"] = wire.ReasonError
			if p.Status().Description != "card declined" {
				t.Errorf("attempt %d: status %+v, want an error with the handler's text", i+1, p.Status())
			}
		} else {
			want["busline.replays"] = int64(1)
			if attr(p, "error.type").Type() != attribute.EMPTY {
				t.Errorf("attempt 5 succeeded but its span has error.type %v", attr(p, "error.type").String())
			}
		}
		checkAttrs(t, p, want)
	}

	// Each lane move: a PRODUCER span under the attempt that failed last,
	// with a busline.lane.move event carrying the failure.
	for _, c := range []struct {
		span   sdktrace.ReadOnlySpan
		after  sdktrace.ReadOnlySpan
		lane   string
		tier   int64
		laneOf string
	}{{retrySend, process[1], "retry", 1, retryLane}, {poisonSend, process[3], "poison", 0, poisonLane}} {
		checkKind(t, c.span, trace.SpanKindProducer)
		if c.span.Parent().SpanID() != c.after.SpanContext().SpanID() || c.span.SpanContext().TraceID() != c.after.SpanContext().TraceID() {
			t.Errorf("%s: parent %s, want the failed attempt's span %s", c.span.Name(), c.span.Parent().SpanID(), c.after.SpanContext().SpanID())
		}
		checkAttrs(t, c.span, map[string]any{"messaging.destination.name": c.laneOf, "busline.lane": c.lane, "messaging.message.id": msgID})
		var ev *sdktrace.Event
		for i := range c.span.Events() {
			if c.span.Events()[i].Name == otelbus.EventLaneMove {
				ev = &c.span.Events()[i]
			}
		}
		if ev == nil {
			t.Errorf("%s: no %s event", c.span.Name(), otelbus.EventLaneMove)
			continue
		}
		checkAttrList(t, c.span.Name()+" event", ev.Attributes, map[string]any{
			"busline.lane": c.lane, "busline.reason": wire.ReasonError, "busline.tier": c.tier,
			"error.type": "*errors.errorString", "busline.error": "card declined",
		})
	}
	if mode == otelbus.ContinueTrace {
		for _, s := range spans {
			if s.SpanContext().TraceID() != send.SpanContext().TraceID() {
				t.Errorf("span %q is in trace %s, want every span in the publisher's trace %s", s.Name(), s.SpanContext().TraceID(), send.SpanContext().TraceID())
			}
		}
	}

	// The metrics count what happened.
	rm := e.Collect()
	group := attribute.String("messaging.consumer.group.name", e.Group)
	dest := func(d string) attribute.KeyValue { return attribute.String("messaging.destination.name", d) }
	for _, c := range []struct {
		metric string
		attrs  []attribute.KeyValue
		want   int64
	}{
		{"messaging.client.sent.messages", []attribute.KeyValue{dest(e.Topic)}, 1},
		{"messaging.client.sent.messages", []attribute.KeyValue{dest(retryLane)}, 1},
		{"messaging.client.sent.messages", []attribute.KeyValue{dest(poisonLane)}, 1},
		{"messaging.client.consumed.messages", []attribute.KeyValue{dest(e.Topic), group}, 1},
		{"messaging.client.consumed.messages", []attribute.KeyValue{dest(retryLane), group}, 2},
		{"busline.consumer.retries", []attribute.KeyValue{attribute.String("busline.retry.kind", "immediate")}, 2},
		{"busline.consumer.retries", []attribute.KeyValue{attribute.String("busline.retry.kind", "delayed")}, 1},
		{"busline.consumer.retries", []attribute.KeyValue{attribute.String("busline.retry.kind", "replay")}, 1},
		{"busline.consumer.diversions", []attribute.KeyValue{attribute.String("busline.reason", "error"), attribute.Int("busline.tier", 1)}, 1},
		{"busline.consumer.poisonings", []attribute.KeyValue{attribute.String("busline.reason", "error"), dest(e.Topic)}, 1},
	} {
		if got := Sum(rm, c.metric, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.metric, c.attrs, got, c.want)
		}
	}
	errType := attribute.String("error.type", "*errors.errorString")
	for _, c := range []struct {
		metric string
		attrs  []attribute.KeyValue
		want   uint64
	}{
		{"messaging.client.operation.duration", []attribute.KeyValue{dest(e.Topic)}, 1},
		{"messaging.process.duration", []attribute.KeyValue{dest(e.Topic), errType}, 2},
		{"messaging.process.duration", []attribute.KeyValue{dest(retryLane), errType}, 2},
		{"messaging.process.duration", []attribute.KeyValue{dest(retryLane)}, 3},
	} {
		if got := Count(rm, c.metric, c.attrs...); got != c.want {
			t.Errorf("%s%v: %d measurements, want %d", c.metric, c.attrs, got, c.want)
		}
	}
}

// Gauges leaves a known backlog (5 messages on the topic, 2 in the retry
// lane, 3 in the poison lane) for a group whose bus does not run, and checks
// what the gauges read; on a transport that is no transports.BacklogReader it
// checks that they report nothing.
func Gauges(t *testing.T, open func(t *testing.T) transports.Transport) {
	e := Setup(t, open, otelbus.ContinueTrace, time.Hour)
	if err := bus.Subscribe(e.Bus, e.Group, func(context.Context, Event) error { return nil }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	reg, err := otelbus.Gauges(e.Bus, otelbus.WithMeterProvider(e.Meters))
	if err != nil {
		t.Fatalf("Gauges: %v", err)
	}
	defer reg.Unregister()
	ctx := context.Background()
	for i := range 5 {
		if err := bus.Publish(ctx, e.Bus, Event{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := e.Transport.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	retryLane, poisonLane := wire.RetryTopic(e.Topic, e.Group), wire.PoisonTopic(e.Topic, e.Group)
	for lane, n := range map[string]int{retryLane: 2, poisonLane: 3} {
		for range n {
			if err := pub.Publish(lane, newLaneMessage()); err != nil {
				t.Fatalf("publish to %s: %v", lane, err)
			}
		}
	}
	rm := e.Collect()
	if _, ok := e.Transport.(transports.BacklogReader); !ok {
		for _, name := range []string{otelbus.MetricLag, otelbus.MetricLaneDepth, otelbus.MetricPoisonDepth, otelbus.MetricOldestAge} {
			if Find(rm, name) != nil {
				t.Errorf("%s reported on a transport that is no BacklogReader", name)
			}
		}
		return
	}
	group := attribute.String("messaging.consumer.group.name", e.Group)
	for _, c := range []struct {
		metric, dest string
		want         int64
	}{{otelbus.MetricLag, e.Topic, 5}, {otelbus.MetricLaneDepth, retryLane, 2}, {otelbus.MetricPoisonDepth, poisonLane, 3}} {
		got, ok := GaugeInt(rm, c.metric, group, attribute.String("messaging.destination.name", c.dest))
		if !ok || got != c.want {
			t.Errorf("%s{%s} = %d (reported: %v), want %d", c.metric, c.dest, got, ok, c.want)
		}
	}
	if age, ok := GaugeFloat(rm, otelbus.MetricOldestAge, group, attribute.String("busline.lane", "main")); ok && age < 0 {
		t.Errorf("%s{main} = %v, want >= 0", otelbus.MetricOldestAge, age)
	}
}

// WaitSpan waits until n spans named name have ended, or fails the test
// when ctx is done.
func (e *Env) WaitSpan(ctx context.Context, name string, n int) {
	e.T.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		got := 0
		for _, s := range e.Spans.Ended() {
			if s.Name() == name {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
			logTrace(e.T, e.Spans.Ended())
			e.T.Fatalf("%d spans %q ended, waited for %d: %v", got, name, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// Collect reads the metrics recorded so far.
func (e *Env) Collect() metricdata.ResourceMetrics {
	e.T.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.Reader.Collect(context.Background(), &rm); err != nil {
		e.T.Fatalf("collect metrics: %v", err)
	}
	return rm
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
