package otelbus

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/wire"
)

// ScopeName is the instrumentation scope of busline's spans and metrics.
const ScopeName = "github.com/busline/busline/otelbus"

// Observer is a bus.Observer that records OpenTelemetry traces and metrics
// following the messaging semantic conventions. Create it with New and set
// it as bus.Config.Observer. It is safe for concurrent use, and may observe
// several buses.
type Observer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	mode   Mode
	inst   *instruments
	sets   sets
	names  names
}

var _ bus.Observer = (*Observer)(nil)

// New returns an Observer. It returns an error only if an instrument could
// not be created; the Observer is usable even then, without that
// instrument (the OpenTelemetry API hands back no-op instruments).
func New(opts ...Option) (*Observer, error) {
	c := newConfig(opts)
	inst, err := newInstruments(meter(c))
	return &Observer{
		tracer: c.tracerProvider.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL), trace.WithInstrumentationVersion(Version)),
		prop:   c.propagator,
		mode:   c.mode,
		inst:   inst,
	}, err
}

// Version is the version of the instrumentation, reported in its scope.
const Version = "0.1.0"

func meter(c config) metric.Meter {
	return c.meterProvider.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL), metric.WithInstrumentationVersion(Version))
}

// Publishing starts the "send <topic>" PRODUCER span of a publish, writes
// its context into every message as the creation context, and returns the
// function that ends it and records messaging.client.operation.duration and
// messaging.client.sent.messages.
func (o *Observer) Publishing(ctx context.Context, p bus.Publication, msgs []*message.Message) func(error) {
	start := time.Now()
	ctx, span := o.tracer.Start(ctx, o.names.get("send", p.Topic), producerKind)
	if span.IsRecording() {
		buf := getAttrs()
		attrs := append(*buf,
			systemAttr(p.Transport),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(p.Topic),
		)
		if len(msgs) == 1 {
			attrs = messageAttrs(attrs, p.Transport, msgs[0])
		} else {
			attrs = append(attrs, semconv.MessagingBatchMessageCount(len(msgs)))
		}
		if p.Delay > 0 {
			attrs = append(attrs, AttrDelay.Float64(p.Delay.Seconds()))
		}
		span.SetAttributes(attrs...)
		*buf = attrs
		putAttrs(buf)
	}
	for _, msg := range msgs {
		o.prop.Inject(ctx, carrier(msg.Metadata))
	}
	return func(err error) {
		end := time.Now()
		k := setKey{op: "send", system: p.Transport, dest: p.Topic}
		if err != nil {
			k.errorType = errorType(err)
			failSpan(span, err, k.errorType)
		}
		span.End()
		o.recordSend(ctx, k, end.Sub(start), len(msgs))
	}
}

// The span kinds as options, made once: an option made per span allocates.
var (
	producerKind = trace.WithSpanKind(trace.SpanKindProducer)
	consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)
)

func (o *Observer) recordSend(ctx context.Context, k setKey, d time.Duration, n int) {
	m := o.sets.get(k, func() []attribute.KeyValue {
		return metricAttrs(k, "send", semconv.MessagingOperationTypeSend)
	})
	o.inst.operationDuration.Float64Histogram.Record(ctx, d.Seconds(), m.record...)
	o.inst.sent.Int64Counter.Add(ctx, int64(n), m.add...)
}

// attrPool holds the attribute slices spans are built from: the SDK copies
// a span's attributes, so a slice can serve the next span, and a message
// then allocates none for them.
var attrPool = sync.Pool{New: func() any {
	s := make([]attribute.KeyValue, 0, 16)
	return &s
}}

func getAttrs() *[]attribute.KeyValue { return attrPool.Get().(*[]attribute.KeyValue) }

func putAttrs(s *[]attribute.KeyValue) {
	clear(*s) // drop the strings they hold
	*s = (*s)[:0]
	attrPool.Put(s)
}

// metadataInt reads a number busline wrote in msg's metadata; 0 when absent
// (without strconv's error, which allocates).
func metadataInt(msg *message.Message, key string) int {
	v := msg.Metadata.Get(key)
	if v == "" {
		return 0
	}
	n, _ := strconv.Atoi(v)
	return n
}

// Handling starts the "process <topic>" CONSUMER span of one attempt,
// parented by (ContinueTrace) or only linked to (LinkTrace) the message's
// creation context, and counts messaging.client.consumed.messages once per
// delivery and busline.consumer.retries for every later attempt. The
// function it returns ends the span and records messaging.process.duration.
func (o *Observer) Handling(ctx context.Context, d bus.Delivery, msg *message.Message) (context.Context, func(error)) {
	start := time.Now()
	attempt, first, _ := bus.AttemptInfo(ctx)
	tier := metadataInt(msg, wire.MetaTier)
	replays := metadataInt(msg, wire.MetaReplays)

	creation := o.prop.Extract(ctx, carrier(msg.Metadata))
	opts := make([]trace.SpanStartOption, 1, 3)
	opts[0] = consumerKind
	parent := ctx
	if sc := trace.SpanContextFromContext(creation); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		if o.mode == ContinueTrace {
			parent = creation
		}
	}
	if o.mode == LinkTrace {
		opts = append(opts, trace.WithNewRoot())
	}
	ctx, span := o.tracer.Start(parent, o.names.get("process", d.Topic), opts...)
	if span.IsRecording() {
		buf := getAttrs()
		attrs := append(*buf,
			systemAttr(d.Transport),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(d.Topic),
			semconv.MessagingConsumerGroupName(d.Group),
			AttrEvent.String(d.Event),
			AttrAttempt.Int(attempt),
			AttrTier.Int(tier),
			semconv.MessagingMessageBodySize(len(msg.Payload)),
		)
		attrs = messageAttrs(attrs, d.Transport, msg)
		if replays > 0 {
			attrs = append(attrs, AttrReplays.Int(replays))
		}
		if pos := msg.Metadata.Get(wire.PositionMetadataKey); pos != "" {
			if p, off, ok := position(pos); ok && d.Transport == "kafka" {
				attrs = append(attrs, semconv.MessagingDestinationPartitionID(p), semconv.MessagingKafkaOffset(off))
			} else {
				attrs = append(attrs, AttrPosition.String(pos))
			}
		}
		span.SetAttributes(attrs...)
		*buf = attrs
		putAttrs(buf)
	}

	k := setKey{system: d.Transport, dest: d.Topic, group: d.Group}
	if first {
		k.op = "process"
		o.inst.consumed.Int64Counter.Add(ctx, 1, o.processSet(k).add...)
	}
	if kind := retryKind(first, tier, replays); kind != "" {
		rk := setKey{op: "retry", system: d.Transport, dest: d.Topic, group: d.Group, extra: kind}
		o.inst.retries.Add(ctx, 1, o.sets.get(rk, func() []attribute.KeyValue {
			return append(metricAttrs(rk, "process", semconv.MessagingOperationTypeProcess), AttrRetryKind.String(kind))
		}).add...)
	}
	return ctx, func(err error) {
		end := time.Now()
		k := k
		k.op = "process"
		if err != nil {
			k.errorType = errorType(err)
			failSpan(span, err, k.errorType)
			span.SetAttributes(AttrReason.String(middleware.Reason(err)))
		}
		span.End()
		o.inst.processDuration.Float64Histogram.Record(ctx, end.Sub(start).Seconds(), o.processSet(k).record...)
	}
}

func (o *Observer) processSet(k setKey) *measured {
	return o.sets.get(k, func() []attribute.KeyValue {
		return metricAttrs(k, "process", semconv.MessagingOperationTypeProcess)
	})
}

// retryKind classifies an attempt: "" for the first attempt at a fresh
// message.
func retryKind(first bool, tier, replays int) string {
	switch {
	case !first:
		return "immediate"
	case tier > 0:
		return "delayed"
	case replays > 0:
		return "replay"
	}
	return ""
}

// Diverted records a lane move: a "send <lane>" PRODUCER span, child of the
// attempt that failed last, from the failure to the confirmed lane write,
// with a busline.lane.move event that carries the failure; and
// busline.consumer.diversions or busline.consumer.poisonings, whose
// messaging.destination.name is the event's topic (not the lane). The message
// in the lane keeps its original creation context, so its next attempts
// (and a replay from the poison lane) stay in the publisher's trace.
func (o *Observer) Diverted(ctx context.Context, d bus.Delivery, msg *message.Message, lane string, f wire.Failure) {
	end := time.Now()
	start := f.LastFailure
	if start.IsZero() || start.After(end) {
		start = end
	}
	laneKind := "poison"
	if f.Tier > 0 {
		laneKind = "retry"
	}
	_, span := o.tracer.Start(ctx, o.names.get("send", lane),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(start))
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			systemAttr(d.Transport),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(lane),
			AttrEvent.String(d.Event),
			AttrLane.String(laneKind),
			AttrTier.Int(f.Tier),
			AttrAttempt.Int(f.Attempts),
		}
		span.SetAttributes(messageAttrs(attrs, d.Transport, msg)...)
		event := []attribute.KeyValue{
			AttrLane.String(laneKind),
			AttrReason.String(f.Reason),
			semconv.ErrorTypeKey.String(f.ErrorType),
			AttrError.String(f.Error),
			AttrTier.Int(f.Tier),
			AttrAttempt.Int(f.Attempts),
		}
		span.AddEvent(EventLaneMove, trace.WithTimestamp(start), trace.WithAttributes(event...))
	}
	span.End(trace.WithTimestamp(end))

	o.recordSend(ctx, setKey{op: "send", system: d.Transport, dest: lane}, end.Sub(start), 1)
	topic := f.Topic // the event's topic, also for a move from the retry lane
	if topic == "" {
		topic = d.Topic
	}
	k := setKey{op: laneKind, system: d.Transport, dest: topic, group: d.Group, extra: f.Reason, tier: f.Tier}
	m := o.sets.get(k, func() []attribute.KeyValue {
		attrs := append(metricAttrs(k, "process", semconv.MessagingOperationTypeProcess), AttrReason.String(f.Reason))
		if f.Tier > 0 {
			attrs = append(attrs, AttrTier.Int(f.Tier))
		}
		return attrs
	})
	if f.Tier > 0 {
		o.inst.diversions.Add(ctx, 1, m.add...)
	} else {
		o.inst.poisonings.Add(ctx, 1, m.add...)
	}
}

// messageAttrs appends the attributes of one message: id, conversation id
// (ce_correlationid) and, on Kafka, its key.
func messageAttrs(attrs []attribute.KeyValue, transport string, msg *message.Message) []attribute.KeyValue {
	id := msg.Metadata.Get(wire.MetaID)
	if id == "" {
		id = msg.UUID
	}
	attrs = append(attrs, semconv.MessagingMessageID(id))
	if c := msg.Metadata.Get(wire.MetaCorrelationID); c != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(c))
	}
	if key := msg.Metadata.Get(wire.MetaPartitionKey); key != "" && transport == "kafka" {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(key))
	}
	return attrs
}

// failSpan marks span as failed with err.
func failSpan(span trace.Span, err error, errType string) {
	if !span.IsRecording() {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(semconv.ErrorTypeKey.String(errType))
}
