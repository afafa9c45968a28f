package harness

import (
	"context"
)

// way does the benchmark's work one way on one transport. It holds the
// connections it needs for the whole run; each measurement prepares a fresh
// topic through it.
type way interface {
	// prepare creates a fresh topic with the group's queue or consumer
	// group, so that every message sent from now on is kept for the group.
	prepare(ctx context.Context, s spec) (topic, error)
	close() error
}

// spec describes one measurement's topic.
type spec struct {
	topic       string
	group       string
	payloadSize int
	consumers   int
	// keys, above 0, makes the senders publish with ordering keys 1..keys,
	// each key owned by one of publishers senders that sends keyRun of its
	// messages in a row, and the consumer check each key's order (busline
	// only).
	keys       int
	keyRun     int
	publishers int
}

// topic is one prepared topic of a way.
type topic interface {
	// newSender returns a sender for one publishing goroutine.
	newSender(ctx context.Context) (sender, error)

	// consume starts consuming as the group and returns once subscribed.
	// handle is called once per message with the sentAt stamp the sender
	// put in it, before the message is acked; it is safe for concurrent
	// use. stop ends the consumption.
	consume(ctx context.Context, handle func(sentAt int64)) (stop func() error, err error)

	// close releases the topic and deletes its broker resources where the
	// way can.
	close(ctx context.Context) error
}

// sender publishes from one goroutine. send may return before the broker
// confirmed the message (raw clients pipeline); flush returns once every
// message sent so far is confirmed, or with the first error.
type sender interface {
	send(ctx context.Context, sentAt int64) error
	flush(ctx context.Context) error
	close() error
}

// batchSender is a sender with a call that publishes several messages and
// returns once the broker confirmed them all. The batch scenarios use it
// where a way has it, and send and flush elsewhere.
type batchSender interface {
	sender
	sendBatch(ctx context.Context, sentAts []int64) error
}

// orderChecker is a topic whose consumer checks per-key order.
type orderChecker interface {
	// violations returns how many messages were handled out of their key's
	// order so far: after a later message of the key, or while another
	// message of the key was being handled.
	violations() int64
}

// syncSender adapts a publish function that returns once the broker has the
// message: flush has nothing to wait for.
type syncSender func(ctx context.Context, sentAt int64) error

func (s syncSender) send(ctx context.Context, sentAt int64) error { return s(ctx, sentAt) }
func (syncSender) flush(context.Context) error                    { return nil }
func (syncSender) close() error                                   { return nil }
