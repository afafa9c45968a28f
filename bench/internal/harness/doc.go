// Package harness measures busline against plain Watermill and the raw
// broker clients doing the same work, in one run, and renders the figures as
// a markdown table. The command in package bench (go run ./bench) drives it.
//
// Each transport (memory, RabbitMQ, Redis, Kafka) is a plug-in offering
// four ways to do the work:
//
//   - raw: the broker's client used for throughput: a buffered Go channel;
//     amqp091-go with async publisher confirms on shared confirm-mode
//     channels and batched multiple-acks; go-redis with pipelined XADD,
//     XREADGROUP COUNT 100 and one XACK per batch; Sarama's async producer
//     and a consumer group.
//   - watermill: the Watermill adapter with its documented durable
//     configuration (GoChannel persistent, watermill-amqp
//     NewDurablePubSubConfig, watermill-redisstream, watermill-kafka v3),
//     consumed by a router with no middleware.
//   - transport: busline's own transport (Publisher and Subscriber) consumed
//     by a router with no middleware: busline without its typed layer.
//   - busline: bus.Publish of a typed event encoded as JSON, bus.Subscribe
//     with the default middleware (recoverer, retries, delayed lanes, poison
//     lane), ack after the handler.
//
// The scenarios are publish throughput from one and from Config.Publishers
// goroutines, end-to-end throughput (publish and consume at once, timed to
// the last handled message), the drain of a backlog, publish-to-handle
// latency at a fixed rate, and heap allocations per message in the
// end-to-end run. Every measurement uses its own topic and consumer group,
// deleted afterwards.
//
// # Delivery semantics
//
// Every way keeps its guarantees on: each publish counts only once the
// broker confirmed it (raw clients confirm asynchronously and are waited for
// before the clock stops), every consumer acks after its handler ran, and
// queues, streams and messages are durable where the broker offers it. The
// raw Kafka row is franz-go's async producer with busline's guarantees
// (idempotent, acks=all); the raw-sarama row and plain watermill-kafka use
// Sarama's defaults (acks from the leader, not idempotent), as busline's
// kafka transport, on franz-go, does not. Plain watermill-amqp
// publishes without confirms, its documented default.
//
// # Ordering
//
// Not measured: messages are counted, not checked for order, and with more
// than one publisher they have no order to keep.
package harness
