package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// PoisonMessage is a message in a poison lane.
type PoisonMessage struct {
	ID       string           // the message's ce_id (or Watermill UUID)
	Event    string           // ce_type
	Payload  []byte           // the original payload, byte for byte
	Metadata message.Metadata // the original metadata plus the busline_ failure record
	Failure  wire.Failure     // the decoded failure record
	// FailureErr is set when the failure record is malformed; the fields of
	// Failure that decoded are still filled.
	FailureErr error
	// Copies is how many copies of the message (same ID) the lane holds: a
	// crash between a lane write and the ack of the original can leave two.
	// List returns each message once; Replay and Purge act on all of its
	// copies at once, so a replayed message is handled once.
	Copies int
}

// PoisonLane reads and works one group's poison lane for one topic: the
// messages the group failed to handle after every retry and delay. Other
// groups on the topic are not affected by anything done here.
//
// Every operation is a sweep: it consumes the lane up to a marker message it
// publishes first, and puts back each message it keeps, so the lane keeps its
// order. Sweeps of one lane should not run at the same time; one that does
// sees the other's kept messages once more. A sweep interrupted by its context
// loses nothing: a message is acked only after it was put back, replayed, or
// purged as asked.
type PoisonLane struct {
	transport transports.Transport
	topic     string
	group     string
}

// metaMarker tags the marker message that ends a sweep.
const metaMarker = "busline_sweep_marker"

// staleMarker is the age after which a sweep drops another sweep's marker,
// left by a sweep that was interrupted.
const staleMarker = 10 * time.Minute

// NewPoisonLane returns the poison lane of group for topic (the event's wire
// topic) on t.
func NewPoisonLane(t transports.Transport, topic, group string) (*PoisonLane, error) {
	if err := errors.Join(ValidateName("topic", topic), ValidateName("group", group)); err != nil {
		return nil, fmt.Errorf("bus.NewPoisonLane: %w", err)
	}
	return &PoisonLane{transport: t, topic: topic, group: group}, nil
}

// Topic returns the lane's own topic.
func (l *PoisonLane) Topic() string { return wire.PoisonTopic(l.topic, l.group) }

// List returns the messages in the lane, oldest first, leaving them there.
// A message the lane holds more than once is listed once, at its first
// copy, with Copies counting them.
//
// List changes nothing on a transport that is a transports.Browser; on
// others it sweeps the lane (see PoisonLane). On a transports.Inspector, a
// group that has no poison lane on the topic is an ErrUnknownGroup that
// names the groups the topic has, and nothing is created.
func (l *PoisonLane) List(ctx context.Context) ([]PoisonMessage, error) {
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	var list []PoisonMessage
	at := map[string]int{}
	if br, ok := l.transport.(transports.Browser); ok {
		msgs, err := br.Browse(ctx, l.Topic(), l.group, 0)
		if err != nil {
			return nil, fmt.Errorf("poison lane %s: browse: %w", l.Topic(), err)
		}
		for _, msg := range msgs {
			if _, isMarker := msg.Metadata[metaMarker]; isMarker {
				continue
			}
			m := readPoison(msg)
			if i, seen := at[m.ID]; seen {
				list[i].Copies++
				continue
			}
			at[m.ID] = len(list)
			m.Copies = 1
			list = append(list, m)
		}
		return list, nil
	}
	_, err := l.sweep(ctx, func(m PoisonMessage) action {
		at[m.ID] = len(list)
		m.Copies = 1
		list = append(list, m)
		return keep
	}, func(id string) { list[at[id]].Copies++ })
	return list, err
}

// Replay moves the messages for which match returns true (all if match is
// nil) to the group's retry lane, due at once, so only this group handles
// them again; a replayed message leaves the poison lane. It returns how many
// were replayed, also when it fails part way. match is called once per
// message, in lane order, just before the message is acted on; it may block,
// to pace a large replay or report progress.
//
// A message with several copies in the lane is replayed once and its other
// copies are deleted.
func (l *PoisonLane) Replay(ctx context.Context, match func(PoisonMessage) bool) (int, error) {
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	return l.sweep(ctx, func(m PoisonMessage) action {
		if match == nil || match(m) {
			return replay
		}
		return keep
	}, nil)
}

// Purge deletes the messages for which match returns true (all if match is
// nil). It returns how many were deleted, also when it fails part way. match
// is called as by Replay; every copy of a deleted message is deleted.
func (l *PoisonLane) Purge(ctx context.Context, match func(PoisonMessage) bool) (int, error) {
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	return l.sweep(ctx, func(m PoisonMessage) action {
		if match == nil || match(m) {
			return drop
		}
		return keep
	}, nil)
}

// check returns ErrUnknownGroup when the transport can tell that the group
// has no poison lane on the topic: a mistyped group must not create one.
func (l *PoisonLane) check(ctx context.Context) error {
	in, ok := l.transport.(transports.Inspector)
	if !ok {
		return nil
	}
	lanes, err := in.Groups(ctx, l.Topic())
	if err != nil {
		return fmt.Errorf("poison lane %s: %w", l.Topic(), err)
	}
	if slices.Contains(lanes, l.group) {
		return nil
	}
	groups, err := in.Groups(ctx, l.topic)
	if err != nil {
		return fmt.Errorf("poison lane %s: %w", l.Topic(), err)
	}
	if len(groups) == 0 {
		return fmt.Errorf("poison lane %s: %w: topic %s has no consumer groups (check the event or topic name)", l.Topic(), ErrUnknownGroup, l.topic)
	}
	return fmt.Errorf("poison lane %s: %w %q on topic %s (its groups: %s)", l.Topic(), ErrUnknownGroup, l.group, l.topic, strings.Join(groups, ", "))
}

type action int

const (
	keep action = iota
	replay
	drop
)

// sweep consumes the lane up to a fresh marker, applying decide to the first
// copy of every message, and returns how many messages were replayed or
// dropped. A later copy of a message is kept if its first copy was, and
// dropped otherwise; copy, if not nil, is called with its id.
func (l *PoisonLane) sweep(ctx context.Context, decide func(PoisonMessage) action, copy func(id string)) (int, error) {
	lane := l.Topic()
	pub, err := l.transport.Publisher()
	if err != nil {
		return 0, fmt.Errorf("poison lane %s: publisher: %w", lane, err)
	}
	defer pub.Close()
	sub, err := l.transport.Subscriber(l.group)
	if err != nil {
		return 0, fmt.Errorf("poison lane %s: subscriber: %w", lane, err)
	}
	defer sub.Close()
	if p, ok := l.transport.(transports.GroupProvisioner); ok {
		if err := p.ProvisionGroup(ctx, lane, l.group); err != nil {
			return 0, fmt.Errorf("poison lane %s: provision: %w", lane, err)
		}
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := sub.Subscribe(subCtx, lane)
	if err != nil {
		return 0, fmt.Errorf("poison lane %s: subscribe: %w", lane, err)
	}
	marker := message.NewMessage(uuid.NewString(), nil)
	marker.Metadata.Set(metaMarker, formatNow())
	if err := pub.Publish(lane, marker); err != nil {
		return 0, fmt.Errorf("poison lane %s: publish marker: %w", lane, err)
	}
	done := 0
	decided := map[string]action{}
	for {
		var msg *message.Message
		select {
		case <-ctx.Done():
			return done, fmt.Errorf("poison lane %s: stopped after %d messages: %w", lane, done, ctx.Err())
		case m, ok := <-msgs:
			if !ok {
				return done, fmt.Errorf("poison lane %s: subscription closed after %d messages", lane, done)
			}
			msg = m
		}
		if msg.UUID == marker.UUID {
			msg.Ack()
			return done, nil
		}
		act, isCopy := keep, false
		if at, isMarker := msg.Metadata[metaMarker]; isMarker {
			if t, err := time.Parse(time.RFC3339Nano, at); err != nil || time.Since(t) > staleMarker {
				act = drop
			}
		} else {
			pm := readPoison(msg)
			first, seen := decided[pm.ID]
			switch {
			case !seen:
				act = decide(pm)
				decided[pm.ID] = act
			case first == keep:
				isCopy = true
			default: // the first copy was replayed or dropped
				act, isCopy = drop, true
			}
			if isCopy && copy != nil {
				copy(pm.ID)
			}
		}
		if err := l.apply(pub, msg, act); err != nil {
			msg.Nack()
			return done, fmt.Errorf("poison lane %s: message %s: %w (after %d messages)", lane, msg.UUID, err, done)
		}
		msg.Ack()
		if act != keep && !isCopy {
			done++
		}
	}
}

// apply carries out act on msg; msg is acked by the caller afterwards.
func (l *PoisonLane) apply(pub message.Publisher, msg *message.Message, act action) error {
	switch act {
	case keep:
		return pub.Publish(l.Topic(), msg.Copy())
	case replay:
		out := msg.Copy()
		f, _ := wire.ReadFailure(out.Metadata)
		f.Replays++
		f.Tier = 0
		f.Due = time.Now()
		f.Write(out.Metadata)
		return pub.Publish(wire.RetryTopic(l.topic, l.group), out)
	default:
		return nil
	}
}

func readPoison(msg *message.Message) PoisonMessage {
	f, err := wire.ReadFailure(msg.Metadata)
	id := msg.Metadata.Get(MetaID)
	if id == "" {
		id = msg.UUID
	}
	return PoisonMessage{
		ID:         id,
		Event:      msg.Metadata.Get(MetaType),
		Payload:    msg.Payload,
		Metadata:   msg.Metadata,
		Failure:    f,
		FailureErr: err,
	}
}

func formatNow() string { return time.Now().UTC().Format(time.RFC3339Nano) }
