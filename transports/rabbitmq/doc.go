// Package rabbitmq is busline's RabbitMQ transport, registered as kind
// "rabbitmq". It speaks AMQP 0-9-1 through github.com/rabbitmq/amqp091-go
// and writes messages in watermill-amqp's wire format (metadata as string
// headers, the UUID in the _watermill_message_uuid header, persistent
// delivery mode), so plain watermill-amqp applications and busline read each
// other's messages. It does not use watermill-amqp's publisher and
// subscriber: they lose or loop on messages in the ways listed under
// "Adapter faults closed" below.
//
// # CloudEvents headers
//
// The CloudEvents attributes (metadata ce_<name>) are written as the AMQP
// headers Config.HeaderPrefix names: cloudEvents:<name> by default, as the
// CloudEvents AMQP binding says, or cloudEvents_, knative's ce- or the
// former ce_. Every one of those prefixes is read back as ce_<name>. A
// message with neither an id header nor a message-id property gets a new
// id as its ce_id the first time it is read.
//
// # Topology
//
// Each topic is a durable fanout exchange named after the topic
// (ExchangeName). Each (topic, group) is a durable queue named
// "<topic>:<group>" (QueueName) bound to it. The queue is declared by
// ProvisionGroup, by SubscribeInitialize and at every Subscribe; busline's
// bus.Subscribe calls ProvisionGroup at once. Names longer than RabbitMQ's
// 255 bytes are shortened with a hash suffix.
//
// A group receives every message published after its queue was declared,
// whether or not a consumer runs: the queue keeps them. A message published
// to a topic before a group's queue ever existed is not delivered to that
// group; with no queue bound at all, RabbitMQ drops it (and still confirms
// it). To keep the messages published while a new service is being
// deployed, provision its groups first: run it once with `provision` at
// start-up (bus.Subscribe before publishing) or call ProvisionGroup from a
// deployment step.
//
// The queues of a group's lanes (wire.RetryTopic, PoisonTopic) never
// expire, whatever Config.QueueExpires says. Publishes to a lane are
// mandatory and confirmed: a lane message that no queue takes is returned
// by RabbitMQ and the publish fails with ErrUnroutable, so that the
// original stays unacked; the next publish declares the lane queue again,
// as does the first publish on each new connection.
//
// Queues are classic by default. Config.QueueType "quorum" declares quorum
// queues instead: replicated across a cluster's nodes (they survive the loss
// of a minority of nodes), always durable, with an x-delivery-count header
// on redeliveries; they use more memory and disk per message and must run on
// a cluster of three or more nodes to be worth it. The type of an existing
// queue cannot change: declaring it with another type fails with an error
// saying so.
//
// # Delivery semantics
//
// At least once. Publish returns only when RabbitMQ has confirmed every
// message (publisher confirms; messages are persistent and queues durable, so
// a confirmed message survives a broker restart). Publishers share a few
// confirm-mode channels (Config.PublishChannels) with asynchronous confirms:
// concurrent publishes do not wait for one another's confirms.
//
// # Publish deadlines, alarms and size
//
// Publish is bounded by the first message's context and
// Config.PublishTimeout, whichever ends first: it returns within a few
// milliseconds of that deadline (the tests allow 500ms on a loaded
// machine), whatever the network and the broker do. Every call that waits
// for the broker (a reconnection, a channel's opening, an exchange's
// declaration, the socket write, the confirm) waits on the caller's
// context, and none holds a lock that another publisher needs meanwhile.
// An error wraps transports.ErrMaybeSent when the broker may have stored a
// message: it was written and its confirm did not come. An error that does
// not wrap it means that none of the call's messages was stored.
//
// RabbitMQ blocks a connection that publishes while one of its resource
// alarms is on (memory above vm_memory_high_watermark, free disk below
// disk_free_limit): it reads nothing more from it until the alarm clears.
// The transport logs connection.blocked at Warn, with the broker's reason
// ("low on memory", "low on disk"), and connection.unblocked at Info;
// while blocked, Publish waits for the block to lift until its deadline,
// then fails with an error that wraps ErrBlocked and names the reason, and
// Health reports the block.
//
// Config.MaxMessageBytes (default: the default max_message_size of the
// broker's version, 128 MiB on RabbitMQ 3.8 to 3.13, 16 MiB on 4.x) is
// reported as Features().MaxMessageBytes; a larger message is refused
// before anything is sent (transports.MessageTooLargeError). A broker
// configured with a lower max_message_size closes the channel of a message
// over it (PRECONDITION_FAILED): Publish then fails with the broker's
// reason, wrapping transports.ErrTooLarge. Messages with a body over 128
// KiB go out on channels of their own, one call at a time, so that such a
// refusal fails no other publish.
//
// A consumer gets one message at a time and settles it when the handler
// acks or nacks. A message is acked after its handler succeeded; a nack, a
// closed subscriber, a cancelled subscription context, a closed transport or
// a crashed process returns it to its queue for redelivery to the group. A
// nacked message is held for Config.NackDelay (doubling for each consecutive
// nack of the same message, up to Config.NackDelayMax) before it goes back,
// so that a failing message never redelivers in a hot loop; the consumer goes
// on with other prefetched messages meanwhile.
//
// Acks are batched: one multiple-ack settles up to half of Config.Prefetch
// acked messages, or those acked in the last 20ms, sent by a timer of its
// own even while the consumer goroutine runs the next handler; a stopping
// consumer sends its batch before it ends. A crash can therefore redeliver
// up to that many messages already handled, acked within the last 20ms.
// While a nacked message waits out its delay, acks go one by one, so that
// no multiple-ack covers it: a delivery leaves the waiting set only with its
// nack frame sent, under the same lock as the acks.
//
// Subscribers are transports.ConcurrentConsumer: the bus's concurrency: N
// runs one consumer per topic whose messages its N workers handle in
// parallel by key, settled out of order. AMQP acknowledges each delivery by
// its tag, so there every ack goes out by itself as its message settles,
// never as a multiple-ack, which would cover a message still in flight.
// The consumer's prefetch is then at least the number of messages in
// flight. Once the bus stops, the channel stays open until the messages in
// flight are settled, so that their acks reach the broker.
//
// RabbitMQ takes a delivery back when it stays unacked past the broker's
// consumer_timeout (Config.ConsumerTimeout says what it is set to; 30
// minutes by default): it closes the channel and redelivers the message,
// and the handler's late ack fails. The consumer logs it, and after
// Config.TimeoutAttempts such deliveries of one message (counted per
// process) moves the next one to the group's poison lane with reason
// timeout (ConsumerTimeoutError) instead of running the handler again. A
// per-attempt timeout times the attempts should stay below it
// (Transport.ConsumerTimeout).
//
// A lost connection is recovered from in the background with exponential
// backoff: consumers re-open their channels and re-declare their exchange,
// queue and binding, then go on. Messages unacked at the loss are redelivered
// (duplicates are possible).
//
// # Ordering
//
// A group's queue is first in, first out: a single consumer of a group gets
// messages in publish order. Redelivery reorders: a nacked message goes back
// to its place in the queue, but the messages already prefetched
// (Config.Prefetch) are handled before it; with Prefetch 1 order holds across
// nacks. The bus's concurrency: N keeps it per key (ce_partitionkey): one
// consumer hands the messages of a key, in delivery order, to one worker
// at a time. Several consumers of a group (several instances) handle
// messages in parallel, so order per key holds only with one. The failure
// pipeline's delayed lanes reorder a failed message after later ones.
//
// # Failure handling
//
// The poison lane and replay run on busline's lanes (ordinary topics
// <topic>.<group>.retry and <topic>.<group>.poison, each an exchange with
// the group's queue), so only the failing group sees a redelivery.
//
// # Delays
//
// The transport is a transports.Delayer (Features().NativeDelay): delayed
// redeliveries and scheduled publishes (PublishDelayed) wait on the broker,
// in queues nobody consumes, so no consumer, goroutine or prefetch slot is
// held while they wait and RabbitMQ's consumer_timeout never fires on them.
// After NServiceBus's delay infrastructure, the delay is rounded up to
// DelayUnit (100ms) and spelled in binary in the routing key; DelayLevels
// (32) levels, each a topic exchange and a queue whose x-message-ttl is
// 2^L units and whose dead-letter exchange is the next level's, pass the
// message down one hop per bit set, and the last dead-letters into the
// headers exchange DelayDeliveryExchange, bound to each destination
// topic's exchange by a header naming it (so that dotted topic names never
// collide). All messages in a level wait the same time, so none waits
// behind another. A delayed message is never early, and late by less than a
// unit plus the dead-lettering of each hop. MaxDelay is about 13.6 years.
//
// Objects: per virtual host and queue type, 32 level queues and exchanges
// (DelayLevelName) and one headers exchange, shared by all services; per
// destination topic, one binding. Nothing per tier.
//
// A busline crash loses no waiting message. Level queues are durable and
// messages persistent, so a broker restart keeps them; but moving from
// level to level is RabbitMQ's dead-lettering, at-most-once for classic
// queues: a broker crash during a hop can lose that message. With
// Config.QueueType "quorum" the levels are quorum queues with at-least-once
// dead-lettering: duplicates, no loss.
//
// # Adapter faults closed
//
//   - watermill-amqp publishes without confirms by default: here confirms
//     are on, and concurrent publishes share channels with async confirms.
//   - watermill-amqp nack-requeues forever a message with a header that is
//     not a string (x-death from dead-lettering, x-delivery-count from quorum
//     queues, a number or table from another client): here such headers
//     become metadata text (numbers in decimal, tables and arrays as JSON) and
//     the message is handled.
//   - watermill-amqp hands out one empty phantom message when its queue is
//     deleted under the consumer (a read from the closed delivery channel):
//     here a closed delivery channel is never read as a message; the consumer
//     re-declares the queue and goes on.
//   - watermill-amqp requeues a nacked message at once, redelivering it in a
//     hot loop: here nacks are delayed as described above.
//   - watermill-amqp's connection wrapper races on reconnect (reported by the
//     race detector): here each connection is guarded by a mutex.
//   - amqp091-go and net/url print the full URL, password included, in some
//     errors: every error, log line and printed Config here has the password
//     replaced by "xxxxx".
//
// # Connection and security
//
// Config.URL (or $BUSLINE_RABBITMQ_URL) names the broker, user, password and
// virtual host. amqps:// URLs use TLS, with Config.TLS's CA, client
// certificate and key, and server name. Config.Auth "external" authenticates
// with the client certificate (SASL EXTERNAL). Heartbeats (Config.Heartbeat)
// detect a dead peer.
package rabbitmq
