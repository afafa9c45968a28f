// Package otelbus instruments a busline bus with OpenTelemetry traces and
// metrics. It is kept apart from package bus, the way River keeps otelriver
// apart: bus only calls a bus.Observer, and costs nothing when
// bus.Config.Observer is nil.
//
//	obs, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
//	b, err := bus.New(transport, bus.Config{Service: "checkout", Observer: obs})
//	reg, err := otelbus.Gauges(b, otelbus.WithMeterProvider(mp)) // lag and lane depths
//	defer reg.Unregister()
//
// The package uses only the OpenTelemetry API; the application brings the
// SDK and its exporters (see examples/observability).
//
// # Conventions
//
// otelbus follows the OpenTelemetry semantic conventions for messaging at
// version 1.43.0 (go.opentelemetry.io/otel/semconv/v1.43.0; the messaging
// conventions are in Development status there). Spans and metrics carry the
// schema URL https://opentelemetry.io/schemas/1.43.0.
//
// messaging.system is "kafka" and "rabbitmq" for those transports (the
// registered values), and the transport's kind for the others: "redis"
// (Redis has no registered value) and "memory". See bus.Bus.TransportKind.
//
// # Spans
//
//   - Publish and PublishBatch: one "send <topic>" span of kind PRODUCER per
//     topic, with messaging.operation.name "send", messaging.operation.type
//     "send", messaging.destination.name, and for a single message
//     messaging.message.id (ce_id), messaging.message.conversation_id
//     (ce_correlationid) and on Kafka messaging.kafka.message.key (the
//     ordering key); messaging.batch.message_count for a batch; busline.delay
//     for a scheduled publish. Its context is the creation context of the
//     messages.
//   - Each attempt at handling a message: one "process <topic>" span of
//     kind CONSUMER, where topic is the one consumed (the event's, or the
//     group's retry lane), with messaging.operation.name and .type
//     "process", messaging.destination.name, messaging.consumer.group.name,
//     messaging.message.id, messaging.message.conversation_id,
//     messaging.message.body.size, busline.event, busline.attempt (1 for
//     the first, counting every earlier failure, see bus.Metadata.Attempt),
//     busline.tier (0 on the event's topic and for a replay, n after the
//     n-th delay), busline.replays for a replayed message; on Kafka
//     messaging.destination.partition.id and messaging.kafka.offset from
//     the consumed record, elsewhere busline.position (the Redis stream
//     entry id). A failed attempt has status Error, its error recorded as an
//     exception event, error.type (the Go type at the end of the error's
//     Unwrap chain, as busline_error_type records it) and busline.reason.
//   - Each move to a lane: one "send <lane>" span of kind PRODUCER, a child
//     of the attempt that failed last, from the failure to the confirmed
//     lane write, with busline.lane (retry or poison), busline.tier,
//     busline.attempt and a "busline.lane.move" event carrying
//     busline.reason, error.type, busline.error (the error text) and the
//     tier.
//
// The process span links to the message's creation context in both modes,
// and with ContinueTrace (the default) it is also its child, so the
// publisher, every attempt, every lane move and a replay from the poison
// lane form one trace: a message in a lane keeps its metadata, creation
// context included, and a replay keeps it too. With LinkTrace each attempt
// starts a new trace that links to the creation context (use it when a
// message fans out to many groups, or waits in lanes for days, and traces
// would grow too large).
//
// # Trace context on the wire
//
// The creation context travels in the message metadata as W3C trace
// context, under the names of the CloudEvents distributed-tracing
// extension in binary mode: ce_traceparent and ce_tracestate
// (wire.MetaCETraceParent, wire.MetaCETraceState). Each transport maps the
// ce_ prefix to its binding's header names like every other CloudEvents
// attribute. otelbus reads ce_traceparent first, then the plain
// traceparent and tracestate headers that other OpenTelemetry
// instrumentations write, so a message from a producer instrumented
// elsewhere continues its trace. WithPropagator replaces the W3C
// propagator (for example to add baggage, which travels as "baggage").
//
// # Metrics
//
// The conventions' metrics, with messaging.system,
// messaging.operation.name, messaging.operation.type,
// messaging.destination.name, messaging.consumer.group.name (consumers) and
// error.type (failures):
//
//   - messaging.client.operation.duration (histogram, s): each send, lane
//     writes included;
//   - messaging.client.sent.messages (counter): messages sent, lane writes
//     included (their destination is the lane);
//   - messaging.client.consumed.messages (counter): messages handed to the
//     handler, once per delivery (immediate retries are not counted again;
//     a redelivery from the retry lane is a new delivery);
//   - messaging.process.duration (histogram, s): each attempt.
//
// busline's own counters, by event topic and group:
//
//   - busline.consumer.retries: attempts after a message's first, by
//     busline.retry.kind: immediate, delayed (from the retry lane) or replay
//     (from the poison lane);
//   - busline.consumer.diversions: moves to the retry lane, by
//     busline.reason and busline.tier;
//   - busline.consumer.poisonings: moves to the poison lane, by
//     busline.reason.
//
// And the observable gauges that Gauges registers: busline.consumer.lag,
// busline.lane.depth, busline.poison.depth and busline.oldest_message.age.
// They read the transport's transports.BacklogReader at each collection; a
// transport without one reports none of them (not zeros). The memory
// transport reads its queues under a lock; Redis and Kafka read the broker
// with a few round trips per topic and group at each collection, each
// documented on its Backlog method; the README has the table. The retry
// lane's depth counts every tier together (the lane is one per group);
// busline.consumer.diversions by busline.tier says how many entered each.
//
// # Cost
//
// With bus.Config.Observer nil the bus does nothing more than without
// otelbus. With an Observer, each publish costs one span and each attempt
// one span, a few attribute slices and two or three metric updates;
// attribute sets of metrics and span names are cached per topic and group.
// Spans that are not sampled skip their attributes.
package otelbus
