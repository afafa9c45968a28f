package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

// BatchItem is one event of a PublishBatch call, with its own options.
type BatchItem struct {
	Event   Event
	Options []PublishOption
}

// Item returns the BatchItem of e with opts.
func Item(e Event, opts ...PublishOption) BatchItem { return BatchItem{Event: e, Options: opts} }

// BatchError is the error of a PublishBatch that failed part way. Every id
// of the batch is in exactly one of its lists. Republishing the events of
// MaybeSent and NotSent with their ids (WithID) is safe for consumers that
// deduplicate on Metadata.ID.
type BatchError struct {
	Sent      []string // confirmed by the broker: will be delivered
	MaybeSent []string // in a send that failed with transports.ErrMaybeSent: the broker may have some of them
	NotSent   []string // never sent, or refused by the broker
	Err       error    // why the send failed
}

// Error says how many events of the batch were sent and why it failed.
func (e *BatchError) Error() string {
	return fmt.Sprintf("bus.PublishBatch: %d of %d events sent, %d may have been sent, %d not sent: %v",
		len(e.Sent), len(e.Sent)+len(e.MaybeSent)+len(e.NotSent), len(e.MaybeSent), len(e.NotSent), e.Err)
}

// Unwrap returns the send's error.
func (e *BatchError) Unwrap() error { return e.Err }

// PublishBatch publishes several events, of one type or several, in as few
// round trips as the transport allows: the events of one topic (and one
// delay) go to the transport in one Publish call, which each transport
// sends pipelined and confirms together (one Redis pipeline; RabbitMQ
// publishes them all, then waits for their confirms; Kafka produces them
// all, then waits; memory takes one lock). Events of one topic keep their
// order, and with it their per-key order.
//
// It returns the events' ids, in the order of items, once the broker has
// every one of them. An invalid event or option fails the whole batch before
// anything is sent. A send that fails part way returns a *BatchError saying
// which events were sent, which may have been, and which were not.
func PublishBatch(ctx context.Context, b *Bus, items ...BatchItem) ([]string, error) {
	if b.isClosed() {
		return nil, fmt.Errorf("bus.PublishBatch: %w", ErrClosed)
	}
	type send struct {
		topic string
		delay time.Duration
		msgs  []*message.Message
		ids   []string
	}
	var sends []*send
	index := map[string]*send{}
	ids := make([]string, len(items))
	var errs []error
	for i, it := range items {
		if it.Event == nil {
			errs = append(errs, fmt.Errorf("item %d: nil event", i))
			continue
		}
		name := it.Event.EventName()
		if err := ValidateName("event", name); err != nil {
			errs = append(errs, fmt.Errorf("item %d (%T): %w", i, it.Event, err))
			continue
		}
		msg, delay, err := b.newMessage(ctx, name, it.Event, it.Options)
		if err != nil {
			errs = append(errs, fmt.Errorf("item %d (%s): %w", i, name, err))
			continue
		}
		ids[i] = msg.UUID
		delay = max(delay, 0)
		topic := b.topic(name)
		key := fmt.Sprintf("%s\x00%d", topic, delay)
		s := index[key]
		if s == nil {
			s = &send{topic: topic, delay: delay}
			index[key] = s
			sends = append(sends, s)
		}
		s.msgs = append(s.msgs, msg)
		s.ids = append(s.ids, msg.UUID)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("bus.PublishBatch: nothing sent: %w", errors.Join(errs...))
	}
	for i, s := range sends {
		if err := b.send(ctx, s.topic, s.delay, s.msgs...); err != nil {
			be := &BatchError{Err: err}
			if errors.Is(err, transports.ErrMaybeSent) {
				be.MaybeSent = s.ids
			} else {
				be.NotSent = append(be.NotSent, s.ids...)
			}
			for _, done := range sends[:i] {
				be.Sent = append(be.Sent, done.ids...)
			}
			for _, left := range sends[i+1:] {
				be.NotSent = append(be.NotSent, left.ids...)
			}
			return ids, be
		}
	}
	return ids, nil
}
