// Package redis is busline's Redis Streams transport, registered as kind
// "redis". It speaks to Redis 6.2 or later (7 recommended) through go-redis v9
// and yields plain Watermill publishers and subscribers.
//
// busline ships its own Watermill Publisher and Subscriber for Redis Streams
// instead of wrapping watermill-redisstream, because that adapter stands
// between busline and its guarantees: it reads one entry per XREADGROUP and
// acks one by one, a malformed entry closes its subscription, a consumer group
// lost to a Redis restart is never recreated (publishes keep succeeding while
// consumers fail: silent loss), and Nack re-sends in a tight loop.
//
// # Layout
//
// Every topic is a stream under the key prefix (default "busline:"), so topic
// "orders.placed" is stream "busline:orders.placed". Every busline group is a
// Redis consumer group on that stream. A group is created with
// XGROUP CREATE <stream> <group> 0 MKSTREAM, so a new group reads the stream
// from its start. Each subscription is one Redis consumer named
// "<consumer>-<n>", where consumer is Config.Consumer (default
// "<service>-<hostname>-<pid>") and n the lowest index not in use for that
// stream and group in the process, so a subscription opened after another was
// closed takes over its name and its pending entries at once.
//
// An entry holds one field per metadata key (the CloudEvents attributes
// ce_id, ce_type, ... and any other), the payload in field "payload", and the
// Watermill UUID in "busline_uuid" when it differs from ce_id. A client in any
// language can publish with a plain XADD:
//
//	XADD busline:orders.placed * ce_id 42 ce_type orders.placed ce_source py ce_specversion 1.0 content-type application/json payload '{"id":42}'
//
// # Delivery semantics
//
// At least once. Publish returns once Redis replied to XADD (with
// appendfsync always, once the entry is on disk). A subscription reads up to
// BatchSize entries per XREADGROUP, and reads the next batch once half of
// the last one is handed out, so that up to about 1.5 × BatchSize entries
// are read and not yet handled. It hands them to the handler one at a time,
// and acknowledges acked entries in batches with one XACK every AckInterval
// or at the end of a batch, whichever comes first; acks are flushed when the
// subscription closes. A crash loses no message, but entries acked and not yet
// flushed are delivered again.
//
// A nacked entry stays pending and is delivered again after NackDelay,
// doubling per consecutive nack up to NackDelayMax, so a message that always
// fails is redelivered at a bounded rate; meanwhile the subscription goes on
// with later entries.
//
// Entries left pending by a consumer that died are claimed with XAUTOCLAIM by
// a live consumer of the group once they have been idle ClaimIdle (default
// 30s), checked every ClaimInterval (default 5s). A live consumer keeps the
// entries it holds from being claimed by refreshing their idle time every
// ClaimIdle/4, so a long handler is not duplicated; a consumer that stalls
// (stopped process, long GC pause) for more than ClaimIdle has its entries
// handled twice.
//
// An entry the transport cannot read (no "payload" field, a metadata encoding
// it does not know such as watermill-redisstream's msgpack "metadata" field)
// is written to the group's poison lane, "<topic>.<group>.poison", with
// reason "malformed", and acknowledged; the subscription goes on.
//
// If the consumer group disappears (Redis restarted without persistence, the
// stream deleted, FLUSHALL), the subscription detects NOGROUP, logs an error,
// recreates the group and every group provisioned on that stream through
// this transport, reading from the stream's start, and Health reports the loss
// for LossReportWindow. Messages published after the loss are delivered;
// those in the lost data are gone.
//
// # Delays
//
// The transport is a transports.Delayer: PublishDelayed keeps a message in
// Redis until it is due, and no consumer holds it meanwhile (no pending
// entry, no goroutine, no heartbeat per message). The bus delays
// redeliveries this way (into a group's retry lane, "<topic>.<group>.retry")
// and scheduled publishes (into the topic itself).
//
// Each destination stream has one sorted set, "{<stream>}:delayed" (the
// braces are a Redis Cluster hash tag, so the set shares the stream's slot),
// scored by due time in Unix milliseconds of the Redis server: the schedule
// script reads the server's TIME and adds the delay, so the clocks of
// publishers do not matter. A member is the stream entry as Publish would
// write it, as length-prefixed elements "<len>:<bytes>": the message UUID
// first (members are unique, and storing the same message twice keeps one),
// then field, value, field, value... A client in another language can
// schedule with ZADD {busline:orders.placed}:delayed <due ms> '2:id7:payload2:{}'.
//
// Every subscription of a topic runs, once per transport, the mover of that
// topic's set: a Lua script that takes up to BatchSize due members, XADDs
// each to the stream (honouring MaxLen/MinIDAge for main topics, never for
// lanes) and ZREMs it, in one atomic step. It runs again at once while it
// moves full batches, then sleeps until the earliest member left is due, at
// most DelayPoll (500ms), since other processes may add earlier ones; a
// PublishDelayed through the same transport wakes it at once. Several
// movers (other groups, other processes) may run on one set at the same
// time: each member is moved exactly once. So a delayed message is never
// delivered early, and late by a few milliseconds when the mover knows it,
// by up to DelayPoll when another process stored it after the mover's last
// look (measured over 1,000 messages due 0-2s: p50 3ms, p99 6ms through
// the same transport; p99 481ms, max 503ms from another one). A message is
// moved only while some subscription of its topic runs, and delivered to
// the groups of the stream as if published when it was moved.
//
// A crash while messages wait loses nothing: the set is in Redis, and the
// next subscription of the topic moves what is due. Like the streams, the
// set survives a Redis restart only with persistence (appendonly yes). A
// member that does not parse (written by hand) is moved as an entry with
// the single field busline_delayed, which the subscription poisons as
// malformed: it neither blocks the set nor disappears.
//
// Keys: a group adds three keys to its topic's stream, however many delay
// tiers it has: "<topic>.<group>.retry" (stream), "{<stream of the
// retry lane>}:delayed" (sorted set, all tiers share it) and
// "<topic>.<group>.poison" (stream); a topic that receives scheduled
// publishes adds "{<stream>}:delayed". Delays of any length are accepted
// (Features().MaxDelay is 0).
//
// # Ordering
//
// A single consumer of a group receives entries in stream order, which is
// publish order. Redelivery after a nack, claims of a dead consumer's
// entries, several consumers in a group and bus concurrency above 1 each
// reorder messages.
//
// # Trimming
//
// By default streams are never trimmed, so no entry a group has not
// acknowledged is ever deleted, and streams grow until trimmed by hand.
// MaxLen (XADD MAXLEN ~) or MinIDAge (XADD MINID ~) bound them, but Redis 7
// trims regardless of consumer groups: an entry trimmed before a slow group
// read it is lost to that group (logged as a warning when the group finds a
// pending entry already deleted). Size MaxLen above the largest backlog you
// accept: peak publish rate × longest consumer outage. Lanes are never
// trimmed: a stream whose topic ends in ".retry" or ".poison" (a group's
// retry and poison lanes, "<topic>.<group>.retry" and ".poison") is written
// without MAXLEN or MINID whatever the configuration, since its entries wait
// for an operator or a due time, not for a reader that keeps up.
//
// # Redis Cluster
//
// Set ClusterAddrs. Every command busline sends touches a single stream, or
// a stream and its delayed set, which the set's hash tag puts in the
// stream's slot; so streams, lanes included, may hash to any slot. A stream
// key that holds a '}' without a hash tag of its own cannot have a delayed
// set in its slot, and PublishDelayed to it is refused on a cluster.
package redis
