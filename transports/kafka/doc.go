// Package kafka is busline's Kafka transport, registered as kind "kafka". It
// consumes with the Watermill Kafka adapter (watermill-kafka/v3 on
// IBM/sarama) and publishes with busline's own Watermill publisher on Sarama,
// which batches a Publish call's messages into one round trip where the
// adapter's makes one per message.
//
// The adapter's known faults are closed here:
//   - a new consumer group starts at the oldest offset, not the newest, so a
//     group provisioned before it subscribes misses nothing;
//   - the producer is idempotent with acks from all in-sync replicas and
//     bounded retries, so a retried send is never written twice;
//   - Sarama speaks protocol 2.8.0 by default, which kfake needs;
//   - a consumer group that cannot join shows in Transport.Health (the
//     adapter only logs and loops);
//   - records produced by plain Kafka clients without Watermill's UUID header
//     get the CloudEvents id (ce_id) as message UUID;
//   - SASL passwords are never logged nor put in errors.
//
// # Delivery semantics
//
// At least once. Publish returns once every in-sync replica has the message.
// A busline group is a Kafka consumer group; a group without committed
// offsets starts at the oldest offset of each partition, so it also receives
// what was published before it first subscribed (as long as the topic keeps
// it). An offset is marked only after its message was acked, and marked
// offsets are committed every Config.CommitInterval and when a subscriber
// closes: a crash or a rebalance redelivers handled messages whose offsets
// were not committed yet, never skips one. A nacked message is delivered
// again on its partition after Config.NackDelay, which holds back the rest of
// that partition: package bus avoids that by moving failing messages to the
// group's retry lane topics and acking them.
//
// # Ordering
//
// Messages with the same key (bus.WithKey, header ce_partitionkey) go to the
// same partition and a group's consumer handles a partition's messages one at
// a time in offset order, so per-key order holds, across rebalances too,
// except for messages redelivered after a rebalance or crash, which come
// again before their successors. Messages without a key are spread over the
// partitions and have no order. Lane topics (".retry." and ".poison") are
// created with one partition, so one consumer scans them in order.
//
// # Topics
//
// Missing topics are created with Config.Partitions and
// Config.ReplicationFactor before the first publish or subscribe, unless
// Config.CreateTopics is false.
package kafka
