// Package memory is busline's embedded transport, the default when no broker
// is configured. It keeps messages in the process and gives them the
// semantics of a broker, so that a program and its tests behave the same on
// memory as on RabbitMQ, Redis or Kafka:
//
//   - Consumer groups: every group provisioned on a topic receives its own
//     copy of each message published afterwards; the subscribers of one group
//     compete for its messages.
//   - At-least-once: a message stays in its group's queue until a consumer
//     acks it. A nack, a closed subscription or a cancelled subscription
//     context puts it back at the head of the queue for redelivery.
//   - Per-key order: a group's queue is first in, first out, so a single
//     consumer sees messages in publish order, redeliveries included.
//
// It registers itself as kind "memory".
//
// # Delays
//
// The transport is a transports.Delayer: a delayed redelivery or a
// scheduled publish (bus.WithDelay) waits in a timer heap, one per
// transport, served by one timer armed for the earliest due time
// (time.AfterFunc, or Config.Clock's); a waiting message holds nothing else
// (no consumer, no goroutine). When due it is published to its topic like any message, so
// every group provisioned then receives it. Any delay is accepted;
// Config.Clock drives the heap in tests (see package bustest). Waiting
// messages are lost with the process or on Close, like every message here.
//
// # Concurrency and inspection
//
// Subscribers are transports.ConcurrentConsumer, so a subscription with
// concurrency N keeps per-key order across N workers. The transport is a
// transports.Inspector (Groups, Backlog) and a transports.Browser (Browse),
// which read without changing anything.
//
// # Persistence
//
// None. Messages live only as long as the Transport: they are lost when the
// process stops, and Close drops every queued message. Messages published to
// a topic on which no group has been provisioned are discarded, like on a
// RabbitMQ exchange without queues.
package memory
