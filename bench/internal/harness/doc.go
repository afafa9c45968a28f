// Package harness measures busline against plain Watermill and the raw
// broker clients doing the same work, in one run, and renders the figures as
// a markdown table. The command in package bench (go run ./bench) drives it.
//
// Each transport (memory, RabbitMQ, Redis, Kafka) is a plug-in offering
// these ways to do the work:
//
//   - raw: the broker's client used for throughput: a buffered Go channel;
//     amqp091-go with async publisher confirms on shared confirm-mode
//     channels and batched multiple-acks; go-redis with pipelined XADD,
//     XREADGROUP COUNT 100 and one XACK per batch; franz-go's async
//     producer and a consumer group. It is the baseline of batch publishes.
//   - raw-sync: the same clients publishing one message per call and
//     waiting for its confirm: a deferred confirm waited per publish
//     (RabbitMQ), one XADD per call (Redis), one ProduceSync per record
//     (Kafka). It is the baseline of single-event publishes. Memory has none.
//   - raw-sarama (Kafka only): Sarama's async producer and consumer group.
//   - watermill: the Watermill adapter with its documented durable
//     configuration (GoChannel persistent, watermill-amqp
//     NewDurablePubSubConfig, watermill-redisstream, watermill-kafka v3),
//     consumed by a router with no middleware.
//   - transport: busline's own transport (Publisher and Subscriber) consumed
//     by a router with no middleware: busline without its typed layer.
//   - busline: bus.Publish (bus.PublishBatch in the batch scenarios) of a
//     typed event encoded as JSON, bus.Subscribe with the default
//     middleware (recoverer, retries, delayed lanes, poison lane), ack
//     after the handler.
//   - busline-otel: busline with otelbus as the bus's Observer, every span
//     sampled and recorded, every metric aggregated, nothing exported.
//
// The scenarios are publish throughput from one goroutine, from
// Config.Publishers and in batches from Config.BatchPublishers; end-to-end
// throughput (publish and consume at once, timed to the last handled
// message) with single and with batch publishes; the drain of a backlog;
// key-ordered end-to-end throughput with one and with
// Config.KeyedConcurrency handlers; publish-to-handle latency at a fixed
// rate; and heap allocations per message in the end-to-end run. Every
// measurement uses its own topic and consumer group, deleted afterwards.
// RunsOn says which scenarios each way runs.
//
// # Delivery semantics
//
// Every way keeps its guarantees on: each publish counts only once the
// broker confirmed it (raw clients confirm asynchronously and are waited for
// before the clock stops), every consumer acks after its handler ran, and
// queues, streams and messages are durable where the broker offers it. The
// raw Kafka rows are franz-go with busline's guarantees (idempotent,
// acks=all); the raw-sarama row and plain watermill-kafka use Sarama's
// defaults (acks from the leader, not idempotent), as busline's kafka
// transport, on franz-go, does not. Plain watermill-amqp publishes without
// confirms, its documented default.
//
// # Ordering
//
// The keyed scenarios check it: each of Config.Keys keys is published by
// one goroutine only, Config.KeyRun messages of a key in a row, each
// publish waiting for the broker, so the broker has each key's messages in
// sequence; the handler counts a violation when a message of a key starts
// while another of the key is being handled, or after a later one of the
// key. Elsewhere messages are counted, not checked for order: with more
// than one publisher they have no order to keep.
package harness
