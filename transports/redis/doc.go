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
// closed takes over its name and its pending entries at once. While a
// subscription runs, the process keeps its liveness key
// "<key_prefix>live:<consumer>" fresh (see Dead consumers below).
//
// An entry holds one field per metadata key (the CloudEvents attributes
// ce_id, ce_type, ... and any other), the payload in field "payload", and the
// Watermill UUID in "busline_uuid" when it differs from ce_id. A client in any
// language can publish with a plain XADD:
//
//	XADD busline:orders.placed * ce_id 42 ce_type orders.placed ce_source py ce_specversion 1.0 content-type application/json payload '{"id":42}'
//
// # Watermill
//
// busline reads the entries of watermill-redisstream's publisher (its
// default marshaller): an entry with a "_watermill_message_uuid" field has
// that UUID, the metadata of its "metadata" field (a msgpack map of
// strings) and of any other field, and its "payload". So consumers move to
// busline topic by topic while watermill-redisstream publishers still write
// (watermill-redisstream's stream key is its topic: set KeyPrefix to "" or
// publish to "busline:<topic>"). Content types are compared by media type,
// so "application/json; charset=utf-8" and "Application/JSON" are JSON.
//
// A plain watermill-redisstream subscriber needs the "_watermill_message_uuid"
// field, without which it fails and closes its subscription, and finds
// metadata only in "metadata". Config.WatermillCompatible writes both
// besides busline's fields; it is off by default because it takes the
// metadata twice: measured 456 bytes per entry in Redis's memory against
// 180 for a small event with the CloudEvents attributes.
//
// # Connecting
//
// Config.Addr defaults to $BUSLINE_REDIS_ADDR (EnvAddr), else
// 127.0.0.1:6379. New checks the connection with PING, and its error says
// what to check: whether redis-server runs and the address, for a refused
// or timed-out connection; the username and password, for WRONGPASS or
// NOAUTH; the TLS settings, for a TLS failure. Config.Password is a
// transports.Secret and Config.URL a transports.SecretURL: no fmt verb,
// slog handler or encoder shows the password.
//
// go-redis logs failed dials to a logger of its own, one per process
// (goredis.SetLogger), stderr by default. The first transport created
// replaces it, once, with one that sends the report of a transport's
// failed dial to that transport's Config.Logger and anything else to
// slog.Default(); later transports leave it be, and an application can
// set its own after creating its first transport.
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
// fails is redelivered at a bounded rate. A subscription with one worker
// (bus concurrency 1, which ordered subscriptions require) hands out
// nothing else meanwhile: the nacked entry comes again before any later one.
// With more workers the others go on with later entries.
//
// # Publishing
//
// Publish is bounded by the context of its first message (msg.Context(),
// which bus.Publish sets), PublishDelayed by its ctx: each returns by the
// context's deadline plus 100ms, whether Redis answers, stalls or refuses
// connections. The XADDs and scripts of concurrent calls share pipelines,
// and a caller's context bounds its own wait only: a call whose context
// ends while it waits for a pipeline is left out of it, and one whose
// context ends while its pipeline is in flight returns, leaving the others
// of the pipeline to their own deadlines. A pipeline's socket reads and
// writes run until the latest deadline among its callers, at most
// ReadTimeout and WriteTimeout, and go-redis never retries them: a retried
// XADD whose reply was lost would store its entry twice.
//
// An error wraps transports.ErrMaybeSent when Redis may have stored a
// message of the call: its command was written and not answered (a
// dropped link, a stall past the deadline, a connection closed before the
// reply), or other commands of the call were executed. It does not when
// nothing was stored: the context was done before the call or ended while
// the call waited for its pipeline, no connection could be made (a refused
// or failed dial, the pool's timeout), the message is too large (see
// Config.MaxMessageBytes), or Redis refused every command with an error
// reply (OOM at maxmemory, WRONGTYPE). A failure of a new connection's
// handshake counts as maybe sent: the transport cannot tell it from a lost
// reply. Measured with a 2s deadline and Redis behind a proxy: connections
// refused, 0.8s, not ErrMaybeSent (before: 3.3s, as go-redis redialled and
// retried); bytes dropped, 2.00s with ErrMaybeSent (before: 21.2s); a
// publish with a 0.5s deadline queued behind that one, 0.50s, not
// ErrMaybeSent (before: 45s).
//
// A message larger than Config.MaxMessageBytes (default 1,000,000 bytes,
// payload plus metadata) is refused before anything is sent, with a
// *transports.MessageTooLargeError. Over Redis's own limits
// (proto-max-bulk-len for one argument, client-query-buffer-limit for a
// client's pending command, 1mb at its floor) Redis would close the
// connection, failing every publish of the pipeline with EOF.
//
// A transport from NewWithClient bounds socket I/O by the deadline only if
// the client has ContextTimeoutEnabled, which New sets; without it Publish
// still returns by the deadline plus the margin, but more often with
// ErrMaybeSent, and its pipeline runs on to the client's ReadTimeout.
//
// # Dead consumers
//
// A process that runs a subscription sets its liveness key,
// "<key_prefix>live:<consumer>" (one per process: Config.Consumer is the
// base of its consumer names), to its ConsumerTTL in milliseconds, refreshed
// every ConsumerTTL/3 (default 3s, so every second) with a one-hour TTL.
// Every ClaimInterval (default 1s) each subscription lists the other
// consumers of its group (XINFO CONSUMERS) and reads their keys: a consumer
// whose key was not refreshed for longer than the TTL it names, measured on
// the Redis server (one hour minus PTTL), is dead. Its pending entries are
// claimed at once (XPENDING for that consumer, XCLAIM), and it is removed
// from the group (XGROUP DELCONSUMER) by a script that checks in the same
// step that it holds nothing, so no entry is ever dropped with it. A
// restarted process, which has a new pid and so a new name, gets its
// predecessor's pending entries about ConsumerTTL after the crash (measured
// 3.0s with the defaults, against 30.5s with claim_idle before), and dead
// names do not pile up in the group.
//
// A consumer without a liveness key (another client, an older busline, a
// process gone more than an hour) is left to XAUTOCLAIM: its entries are
// claimed once idle ClaimIdle (default 30s); such a consumer is removed once
// it holds nothing and was idle an hour. A live consumer keeps the entries
// it holds from XAUTOCLAIM by refreshing their idle time every ClaimIdle/4,
// so a long handler is not duplicated. A process that stalls (stopped, long
// GC pause, cut from Redis) for more than ConsumerTTL has its entries
// claimed and handled twice; when it wakes up it goes on, and its acks of
// entries it no longer owns are harmless.
//
// An entry the transport cannot read (no "payload" field, a "metadata" field
// of a watermill-redisstream entry that is not msgpack) is written to the
// group's poison lane, "<topic>.<group>.poison", with
// reason "malformed", and acknowledged; the subscription goes on.
//
// If the consumer group disappears (Redis restarted without persistence, the
// stream deleted, FLUSHALL), the subscription detects NOGROUP, logs an error,
// recreates the group and every group provisioned on that stream through
// this transport, reading from the stream's start, and Health reports the loss
// for LossReportWindow. Messages published after the loss are delivered;
// those in the lost data are gone.
//
// # Redis at maxmemory
//
// With maxmemory reached and the noeviction policy, Redis refuses every
// write that may grow its memory (XADD, SET, ZADD, XGROUP CREATE), and
// allows reads and the writes that free memory or do not grow it
// (XREADGROUP, XACK, XCLAIM, PEXPIRE). Publish and PublishDelayed then fail
// with Redis's OOM error, which does not wrap transports.ErrMaybeSent:
// nothing was stored. Subscriptions of groups that exist start and drain
// their backlog: a group Redis refuses to create with OOM is looked up with
// XINFO GROUPS and used when it exists, and a process's liveness key, which
// SET cannot refresh, is refreshed with PEXPIRE. A group that does not exist
// yet (a new service, a new lane) cannot be created until memory is freed.
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
// first (so members are unique; storing the same message, UUID, metadata
// and payload, while it waits keeps one copy),
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
// publishes adds "{<stream>}:delayed"; each process adds its liveness key
// (see Dead consumers). Delays of any length are accepted
// (Features().MaxDelay is 0).
//
// # Ordering
//
// A single consumer of a group receives entries in stream order, which is
// publish order. A subscription with one worker (bus concurrency 1, as
// ordered subscriptions have) keeps that order through failures and
// crashes: a nacked entry, or a malformed one whose move to the poison lane
// failed, is delivered again before any later entry; and a starting
// subscription first takes its own pending entries, then, before it reads
// anything new, those of the group's dead consumers in stream order. While
// a predecessor holds pending entries with a fresh liveness key (killed
// less than ConsumerTTL ago, it still looks alive), it waits up to
// ConsumerTTL + ClaimInterval for them to become claimable; so it starts
// reading new entries at most about 4s late with the defaults. A
// predecessor is a consumer whose base name differs from this process's only
// in its last number: with the default "<service>-<hostname>-<pid>", an
// earlier process on the same host. Consumers of other hosts, of this
// process, and those without a liveness key are not waited for.
// Measured: 10,000 events, the only consumer process killed -9 and restarted
// 5 times: 0 handled after a later one (before: 232 of 2,000 through 3 kills).
// Redelivered duplicates (acked entries whose XACK had not been sent) are
// handled again in the same order.
//
// Subscribers are transports.ConcurrentConsumer, so a bus subscription
// with concurrency N above 1 keeps per-key order: one Redis consumer per
// topic hands the entries, in stream order, to the bus, which runs
// different keys (ce_partitionkey) on N workers in parallel and the
// entries of one key one at a time, in order. Up to ConsumeConcurrent's
// limit of them are unsettled at once, and they are acked in any order
// (Redis settles entries one by one, XACK batching them), as the
// stream-order guarantees of one worker above apply to that consumer. The
// conformance case Bus/KeyOrderedConcurrency checks it over 10,000 events
// of 100 keys on 16 workers.
//
// Several consumers in a group (processes, or Subscribe called several
// times on one subscriber), and claims of a dead competing consumer's
// entries while others run, reorder messages.
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
// # Inspection
//
// The transport is a transports.Inspector and a transports.Browser, and
// both only read (XINFO GROUPS, XPENDING, XRANGE, ZCARD): they create no
// key or group, read as no consumer and ack or claim nothing. Groups lists
// the consumer groups of a topic's stream, TopicExists whether the stream
// exists. Backlog counts what a group has
// not acked: the entries not yet delivered to it (the lag XINFO GROUPS
// reports, or, where it reports none, as on Redis 6.2 or after an XDEL, a
// count of the entries after the group's last-delivered-id), its pending
// entries, and the members of the topic's delayed set; Oldest is the
// ce_time of the oldest entry the group has not acked, or the time in its
// id. Browse returns copies of a group's pending entries and then of the
// entries after its last-delivered-id, oldest first, decoded as a
// subscription decodes them, so bus.PoisonLane.List reads a poison lane
// without sweeping it.
//
// # Redis Cluster
//
// Set ClusterAddrs. Every command busline sends touches a single stream, or
// a stream and its delayed set, which the set's hash tag puts in the
// stream's slot; so streams, lanes included, may hash to any slot. A stream
// key that holds a '}' without a hash tag of its own cannot have a delayed
// set in its slot, and PublishDelayed to it is refused on a cluster.
package redis
