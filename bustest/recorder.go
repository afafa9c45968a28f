package bustest

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/wire"
)

// kind is what a record saw happen to a message.
type kind int

const (
	published kind = iota // sent by Publish or PublishBatch
	handled               // a handler attempt returned nil
	failed                // a handler attempt returned an error
	retrying              // moved to a retry lane for a delayed redelivery
	poisoned              // moved to a poison lane
)

func (k kind) String() string {
	return [...]string{"published", "handled", "failed", "retrying", "poisoned"}[k]
}

// record is one thing the harness saw, with a copy of the message as it was
// then.
type record struct {
	kind    kind
	event   string // the event name
	group   string // the consumer group; empty for a publish
	topic   string // the topic published to, or consumed from
	id      string
	attempt int
	payload []byte
	raw     message.Metadata
	err     string       // failed: the attempt's error
	failure wire.Failure // retrying, poisoned: the failure record written
	lane    string       // retrying, poisoned: the lane written to
}

// recorder is the harness's bus.Observer: it records, then passes on to the
// application's Observer, if any.
type recorder struct {
	next bus.Observer

	mu      sync.Mutex
	records []record
	changed chan struct{} // closed and replaced on every new record
}

var _ bus.Observer = (*recorder)(nil)

func newRecorder(next bus.Observer) *recorder {
	return &recorder{next: next, changed: make(chan struct{})}
}

func (r *recorder) add(rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	close(r.changed)
	r.changed = make(chan struct{})
}

// snapshot returns the records so far, and a channel closed at the next one.
func (r *recorder) snapshot() ([]record, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.records[:len(r.records):len(r.records)], r.changed
}

// Publishing records msgs once the transport has them.
func (r *recorder) Publishing(ctx context.Context, p bus.Publication, msgs []*message.Message) func(error) {
	var next func(error)
	if r.next != nil {
		next = r.next.Publishing(ctx, p, msgs)
	}
	return func(err error) {
		if next != nil {
			next(err)
		}
		if err != nil {
			return
		}
		for _, m := range msgs {
			r.add(record{kind: published, event: m.Metadata.Get(bus.MetaType), topic: p.Topic, id: m.UUID,
				payload: m.Payload, raw: maps.Clone(m.Metadata)})
		}
	}
}

// Handling records the attempt's outcome.
func (r *recorder) Handling(ctx context.Context, d bus.Delivery, msg *message.Message) (context.Context, func(error)) {
	attempt, ok := middleware.Attempt(ctx)
	if !ok {
		attempt = 1
	}
	var next func(error)
	if r.next != nil {
		ctx, next = r.next.Handling(ctx, d, msg)
	}
	return ctx, func(err error) {
		if next != nil {
			next(err)
		}
		rec := record{kind: handled, event: d.Event, group: d.Group, topic: d.Topic, id: msg.UUID, attempt: attempt,
			payload: msg.Payload, raw: maps.Clone(msg.Metadata)}
		if err != nil {
			rec.kind, rec.err = failed, err.Error()
		}
		r.add(rec)
	}
}

// Diverted records a lane move.
func (r *recorder) Diverted(ctx context.Context, d bus.Delivery, msg *message.Message, lane string, f wire.Failure) {
	if r.next != nil {
		r.next.Diverted(ctx, d, msg, lane, f)
	}
	rec := record{kind: poisoned, event: d.Event, group: d.Group, topic: d.Topic, id: msg.UUID, attempt: f.Attempts,
		payload: msg.Payload, raw: maps.Clone(msg.Metadata), failure: f, lane: lane}
	f.Write(rec.raw)
	if f.Tier > 0 {
		rec.kind = retrying
	}
	r.add(rec)
}

// metadata returns what bus.MetadataFrom would return to a handler of rec's
// message (for a publish: to its first handler, with Group empty).
func (rec record) metadata() bus.Metadata {
	md := bus.ReadMetadata(rec.raw, rec.id, rec.topic, rec.group)
	md.Event = rec.event
	md.Attempt = max(rec.attempt, 1)
	if t := rec.raw.Get(wire.MetaTopic); t != "" {
		md.Topic = t // consumed from a lane: the event's own topic
	}
	return md
}

// String describes rec in one line, for failure messages.
func (rec record) String() string {
	s := fmt.Sprintf("%s %s id=%s", rec.kind, rec.event, rec.id)
	if rec.group != "" {
		s += fmt.Sprintf(" by group %s (attempt %d)", rec.group, rec.attempt)
	} else {
		s += " to topic " + rec.topic
	}
	switch rec.kind {
	case failed:
		s += ": " + rec.err
	case retrying:
		s += fmt.Sprintf(" to %s, tier %d, after: %s", rec.lane, rec.failure.Tier, rec.failure.Error)
	case poisoned:
		s += fmt.Sprintf(" to %s (%s): %s", rec.lane, rec.failure.Reason, rec.failure.Error)
	}
	return s
}
