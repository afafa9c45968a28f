// Package transports holds the small interface every busline broker adapter
// implements, and a registry that opens one by kind, the way database/sql opens
// a driver by name.
//
// A transport yields plain Watermill publishers and subscribers, so anything
// built on busline can always drop down to Watermill. Transports register
// themselves from an init function:
//
//	import _ "github.com/busline/busline/transports/memory"
//
// and are opened by kind with [Open], or constructed explicitly with their own
// package's New function. Package transports/all imports every transport that
// ships with busline, for applications that pick the broker in YAML.
//
// # Delivery semantics
//
// Every transport delivers at least once: a message is redelivered until it
// is acked. A nacked message is redelivered to the same group. Each consumer
// group receives its own copy of every message published after the group was
// provisioned (by [GroupProvisioner], SubscribeInitialize or a first
// Subscribe); consumers of one group compete for its messages.
//
// # Ordering
//
// A transport that reports [Features].OrderedPerKey keeps the publish order of
// messages with the same key for a single consumer of a group. Redelivery,
// several consumers per group and the failure pipeline's delayed lanes can
// each reorder messages; package bus documents where.
//
// # Direct delivery
//
// A subscriber that also implements [Consumer] runs the bus's handler on its
// own delivery goroutine. The bus prefers it to the Subscribe channel, whose
// contract (the next message only after the Ack) costs two goroutine
// switches per message; the guarantees are the same. Every transport that
// ships with busline implements it.
package transports
