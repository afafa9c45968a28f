package otelbus

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures New and Gauges.
type Option func(*config)

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	mode           Mode
}

func newConfig(opts []Option) config {
	c := config{mode: ContinueTrace}
	for _, opt := range opts {
		opt(&c)
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.propagator == nil {
		c.propagator = propagation.TraceContext{}
	}
	return c
}

// WithTracerProvider sets where spans go. Default: the global
// otel.GetTracerProvider() at the time of New.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// WithMeterProvider sets where metrics go. Default: the global
// otel.GetMeterProvider() at the time of New or Gauges.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithPropagator sets how the creation context is written into and read
// from message metadata. Default: propagation.TraceContext{} (W3C
// traceparent and tracestate, written as ce_traceparent and ce_tracestate;
// see the package documentation). The global propagator is not the default
// because it propagates nothing until an application sets it.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithMode sets how a process span relates to the creation context of its
// message. Default: ContinueTrace.
func WithMode(m Mode) Option {
	return func(c *config) { c.mode = m }
}

// Mode is how a consumer's process span relates to the context in which
// its message was created (the publisher's send span).
type Mode int

const (
	// ContinueTrace makes each process span a child of the message's
	// creation context, with a link to it as well: the publisher, every
	// attempt, every lane move and a replay all belong to one trace.
	ContinueTrace Mode = iota

	// LinkTrace starts each process span as the root of a new trace, with a
	// link to the creation context: traces stay small when one message
	// fans out to many groups or is retried for days, and tracing
	// back-ends that follow links still show the journey.
	LinkTrace
)

// String returns "continue" or "link".
func (m Mode) String() string {
	if m == LinkTrace {
		return "link"
	}
	return "continue"
}
