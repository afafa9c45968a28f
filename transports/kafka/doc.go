// Package kafka is busline's Kafka transport, registered as kind "kafka",
// built on franz-go (github.com/twmb/franz-go/pkg/kgo): busline's own
// Watermill publisher and subscriber, keeping the Watermill Kafka adapter's
// record format (payload as value, metadata as headers, the message UUID in
// _watermill_message_uuid) so either can read the other's records.
//
// What it closes over the Sarama-based Watermill adapter:
//   - a new consumer group starts at the oldest offset, not the newest, so a
//     group provisioned before it subscribes misses nothing;
//   - the producer is idempotent with acks from all in-sync replicas and
//     pipelines the requests of concurrent publishes;
//   - keys are partitioned by murmur2 exactly as the Java client (and a
//     franz-go producer with default settings), so one key lands on one
//     partition whichever client produced it;
//   - a nack delays one record, not its whole partition in a loop;
//   - a consumer group that cannot join shows in Transport.Health;
//   - records produced by plain Kafka clients without the UUID header get
//     the CloudEvents id (ce_id) as message UUID;
//   - SASL passwords are never logged nor put in errors.
//
// # Delivery semantics
//
// At least once. Publish returns once every in-sync replica has the
// message, or as soon as the message's context ends: then its error wraps
// transports.ErrMaybeSent when records were sent or buffered without an
// acknowledgement (the producer may still deliver them), and does not when
// nothing was sent (a context already done, a closed transport, a topic
// that could not be created, a broker refusal). A message over
// Config.MaxMessageBytes (default 1000000, as transports.MessageSize counts
// it) is refused before anything is sent; the producer's batches are
// capped at that plus BatchOverhead, a default broker's message.max.bytes.
// A record the brokers refuse as too large fails alone: the records
// franz-go failed with it are produced again, one at a time. A busline group consumes a main topic as the Kafka consumer
// group of the same name (cooperative-sticky rebalancing), and its own
// retry and poison lanes as groups named after the lane topics (see
// KafkaGroup), so the lanes never take part in the main topic's rebalances
// and tools reading a poison lane never join the live group.
//
// Each ack is recorded when it happens. The committed offset of a partition
// is its first record not acked; the records acked after it are listed in
// the commit's metadata ("busline-acked:v1:…"), and a next owner of the
// partition skips them. Commits happen every Config.CommitInterval,
// synchronously when partitions are revoked, and when a subscriber closes:
// a clean stop hands nothing twice to the next consumer, and a crash
// redelivers at most what was acked in its last commit interval. A
// partition being revoked first lets the handlers of its records in flight
// finish, for up to a quarter of Config.RebalanceTimeout (at most 5s), then
// cancels their contexts; the records not handed out go to the next owner.
//
// # Ordering
//
// Messages with the same key (bus.WithKey, header ce_partitionkey) go to the
// same partition. A partition's records are handed out in offset order in
// batches, at most one batch per consumer at a time, so a single consumer
// (Concurrency 1) handles each key in publish order, across rebalances too,
// except for messages redelivered after a crash, which come again before
// their successors. The subscriber is a transports.ConcurrentConsumer: with
// bus Concurrency above 1, one consumer hands each partition's records out
// in offset order, up to the bus's limit unsettled, and the bus runs
// different keys in parallel, each key in order; the acks, which then come
// out of order, are tracked one by one, and a revoke waits for the
// partition's unsettled messages as for a batch in flight. Competing
// Subscribe or Consume calls instead handle a partition's batches side by
// side, without per-key order. Messages without a key are
// spread over the partitions and have no order. Lane and wait topics have
// one partition.
//
// # Delays
//
// The transport is a transports.Delayer: PublishDelayed stores messages in
// wait topics of their destination, <destination>.delay.<milliseconds>, one
// per wait level (m×2^e×100ms for m in 4…7), created with one partition,
// LogAppendTime timestamps and a retention of their level plus 7 days. A
// record is held in a level exactly that level after it was stored, so the
// records of one wait topic are due in offset order and none waits behind
// a later one. Each level takes the next three binary digits of the delay
// in 100ms units, so a delay up to 6m49s takes at most four levels, up to a
// day at most seven; the default tiers 10s, 1m and 10m use eight wait
// topics per retry lane. Every subscriber of a
// topic runs, in its own consumer group (MoverGroup), the mover of the
// topic's wait topics: it pauses a partition whose head is not due, rewinds
// it to the head and resumes it at the due time, then produces the due
// records to their next level or to the destination (key, headers and
// payload unchanged) and commits them only once the brokers acknowledged
// them. Nothing waiting is held in memory, in a handler or in the
// destination's consumer group; a crash in between moves a record twice,
// never loses it. A record is delivered at or after its due time: late by
// the mover's poll (up to 200ms per level) and the produce, and, for a
// wait topic first created by another process, by up to 5s while the mover
// discovers it. Delays are rounded up to 100ms; MaxDelay is 30 days. A
// delayed message is moved only while some subscriber of its destination
// runs.
//
// # Inspecting
//
// The transport is a transports.Inspector and a transports.Browser.
// ProvisionGroup commits the start of each partition for a Kafka group
// with no offset there, so that Groups, which lists the groups with
// committed offsets on a topic, sees a group from the moment it is
// subscribed. Backlog is end offset less committed offset less the
// records acked beyond it (commit metadata), plus the records of the
// topic's wait topics not moved yet. Inspecting never creates a topic, joins
// a group or commits.
//
// # Topics
//
// Missing topics are created before the first publish or subscribe, unless
// Config.CreateTopics is false: main topics with Config.Partitions and
// Config.ReplicationFactor; retry lanes with one partition and 14 days'
// retention; poison lanes with one partition and no retention limit.
package kafka
