// Package bus is busline's typed API: services publish typed events and
// handle them in consumer groups, over any transport, with retries, delayed
// redelivery and a poison lane when a handler fails.
//
// An event is a Go type with a stable wire name:
//
//	type OrderPlaced struct{ OrderID string }
//
//	func (OrderPlaced) EventName() string { return "orders.placed" }
//
// A Bus runs on a transports.Transport (memory, RabbitMQ, Redis Streams,
// Kafka, or any Watermill Pub/Sub wrapped as one). Handlers are generic
// functions, registered per consumer group:
//
//	b, _ := bus.New(transport, bus.Config{Service: "checkout"})
//	bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error { ... })
//	go b.Run(ctx)
//	bus.Publish(ctx, b, OrderPlaced{OrderID: "A-1"}, bus.WithKey("customer-7"))
//
// The handler's context carries the message's Metadata (MetadataFrom): id,
// event, group, attempt, key, correlation and causation ids, publish time.
// A message published from inside a handler inherits its correlation id and
// takes its id as causation id.
//
// # Wire format
//
// Every message carries the CloudEvents 1.0 attributes in binary content mode
// as metadata (ce_id, ce_type = event name, ce_source = service, ce_time,
// ce_specversion, content-type, and the extensions ce_partitionkey,
// ce_correlationid, ce_causationid); the payload is JSON unless Config.Codec
// says otherwise. The topic is the event name, or what Config.Topics maps it
// to. A client in any language can publish or consume busline events.
//
// # Handlers
//
// A subscription runs Concurrency workers on each topic it consumes. A
// worker takes one message, runs it through the failure pipeline (package
// middleware) to the handler on its own long-lived goroutine, acks or nacks
// it, then takes the next: busline does not use Watermill's router, which
// starts a goroutine per message and closes subscriptions before in-flight
// handlers finish.
//
// # Delivery semantics
//
// At least once. Publish returns nil only once the transport has the message.
// A message is acked only after its handler returned nil, or after it was
// written to a retry or poison lane; everything else is redelivered. Handlers
// must therefore be idempotent, and may use Metadata.ID to deduplicate.
//
// Each group gets its own copy of every event published after the group was
// first subscribed (Subscribe provisions it on transports that can); the
// instances of a group share its events (competing consumers).
//
// Close stops taking messages, lets in-flight handlers finish within the
// grace period, then cancels their contexts. A cancelled handler's message
// is neither acked nor counted as a failure: it is redelivered.
//
// # Failure handling
//
// A handler error is retried at once with exponential backoff (Config.Retry);
// a message that still fails moves to the group's retry lane and is handled
// again after each delay tier (Config.Delays), while the stream moves on; after
// the last tier it lands in the group's poison lane with its original payload
// and metadata and a failure record (package middleware lists the busline_
// keys). Permanent(err) and payloads that cannot be decoded skip the retries.
// A panic is recovered into an error with its stack. PoisonLane lists,
// replays (to this group only) and purges poison messages.
//
// # Ordering
//
// A transport that keeps per-key order delivers a group's messages with the
// same key in publish order to a subscription with Concurrency 1. Order is
// lost where messages overtake each other: with Concurrency above 1, across
// several instances of a group, and when a failed message waits in a retry
// lane. A subscription with Ordered set keeps order through failures by
// retrying in place and then poisoning, at the cost of blocking the stream
// while it retries.
package bus
