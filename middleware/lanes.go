package middleware

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// DefaultDelays returns the delayed-redelivery tiers used when none are
// configured, 10s, 1m and 10m, in a new slice each call.
func DefaultDelays() []time.Duration {
	return []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute}
}

// Lanes moves a message whose handler failed out of the way, so the stream
// it came from moves on: to group's next delayed-redelivery tier while tiers
// remain, and to group's poison lane after the last tier or at once for a
// permanent failure. The original message is acked only once the lane
// publish succeeded; if it fails, the handler's error is returned and the
// message is redelivered, never dropped. A failure while the message's
// context is done (the consumer is stopping) is passed on unchanged: it
// goes to no lane.
type Lanes struct {
	// Publisher publishes to the lanes. Its Publish must return only once
	// the broker has the message. Required.
	Publisher message.Publisher

	// Topic is the subscription's main topic. Required.
	Topic string

	// Group is the consumer group the lanes belong to. Required.
	Group string

	// Delays are the tiers: the first failure waits Delays[0], and so on.
	// Empty means no delayed redelivery: failures go to the poison lane.
	Delays []time.Duration

	// Handler names the handler in failure records (wire.MetaHandler). Default:
	// the Watermill router's handler name in the message's context, if any.
	Handler string

	// Delay, when set, stores a message for a tier on the broker until the
	// tier's delay has passed and then delivers it to the retry lane (a
	// transports.Delayer's PublishDelayed): no consumer holds it while it
	// waits. When nil, the message is published to the retry lane at once
	// with its due time in wire.MetaDue, and the lane's consumer waits for it
	// (see WaitDue).
	Delay func(ctx context.Context, topic string, delay time.Duration, msg *message.Message) error

	// Ordered keeps the subscription's order also when a lane write fails:
	// the write is retried in place, with LaneWriteBackoff, until it
	// succeeds or the message's context is done (the consumer stops), so no
	// later message overtakes the failed one. Default: false, a failed write
	// returns the error and the message is nacked for redelivery.
	Ordered bool

	// Diverted, if set, is called after msg was written to lane with the
	// failure record f, before the original is acked. Default: nil.
	Diverted func(msg *message.Message, lane string, f wire.Failure)

	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// laneWriteBackoff paces the in-place retries of a lane write that failed in
// an ordered subscription (Lanes.Ordered).
var laneWriteBackoff = Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}

// Middleware returns the Lanes middleware.
func (l Lanes) Middleware(h message.HandlerFunc) message.HandlerFunc {
	if l.Now == nil {
		l.Now = time.Now
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || msg.Context().Err() != nil {
			return out, err
		}
		perr := l.divert(msg, err)
		if perr != nil && l.Ordered {
			waits := laneWriteBackoff.NewBackOff()
			for perr != nil && sleep(msg.Context(), waits.NextBackOff()) {
				perr = l.divert(msg, err)
			}
		}
		if perr != nil {
			return nil, fmt.Errorf("%w (and moving the message to a lane failed, so it stays for redelivery: %v)", err, perr)
		}
		return nil, nil
	}
}

// divert publishes msg to its next lane with the failure recorded.
func (l Lanes) divert(msg *message.Message, cause error) error {
	now := l.Now()
	f, _ := wire.ReadFailure(msg.Metadata) // a malformed record is rewritten below
	if f.Attempts == 0 {
		f.Attempts = 1
	}
	if f.FirstFailure.IsZero() {
		f.FirstFailure = now
	}
	f.LastFailure = now
	f.Error = errorText(cause)
	f.ErrorType = errorType(cause)
	f.Reason = Reason(cause)
	if f.Group == "" {
		f.Group = l.Group
	}
	if f.Topic == "" {
		f.Topic = l.Topic
	}
	if l.Handler != "" {
		f.Handler = l.Handler
	} else if name := message.HandlerNameFromCtx(msg.Context()); name != "" {
		f.Handler = name
	}
	if pos := msg.Metadata.Get(wire.PositionMetadataKey); pos != "" {
		f.Position = pos
	}
	lane := msg.Copy()
	if f.Tier < len(l.Delays) && !IsPermanent(cause) {
		f.Tier++
		delay := l.Delays[f.Tier-1]
		f.Due = now.Add(delay)
		f.Write(lane.Metadata)
		topic := wire.RetryTopic(l.Topic, l.Group)
		var err error
		if l.Delay != nil {
			// The write must finish even while the consumer stops: the
			// original is acked only once it did.
			err = l.Delay(context.WithoutCancel(msg.Context()), topic, delay, lane)
		} else {
			err = l.Publisher.Publish(topic, lane)
		}
		if !errors.Is(err, transports.ErrTooLarge) {
			return l.diverted(msg, topic, f, err)
		}
		// With its failure record the message is over the transport's size
		// limit (a message another client published close to the limit):
		// no redelivery can carry it, so it goes to the poison lane, where
		// the record is cut to what fits.
		f.Error += " (no delayed redelivery: " + err.Error() + ")"
	}
	f.Tier, f.Due = 0, time.Time{}
	f.Write(lane.Metadata)
	topic := wire.PoisonTopic(l.Topic, l.Group)
	err := l.Publisher.Publish(topic, lane)
	if errors.Is(err, transports.ErrTooLarge) {
		// The shortest record that still says where the message failed and
		// why: its class, group, topic and counts, without the texts.
		f.Error = "(the error text was dropped: the message is at the transport's size limit)"
		f.ErrorType, f.Handler, f.Position = "", "", ""
		lane = msg.Copy()
		f.Write(lane.Metadata)
		err = l.Publisher.Publish(topic, lane)
		if errors.Is(err, transports.ErrTooLarge) {
			err = fmt.Errorf("the message cannot be moved to the poison lane: even with its shortest failure record it is over the transport's size limit, so it stays on its topic (a producer sent it at the limit, leaving no room for busline's failure record): %w", err)
		}
	}
	return l.diverted(msg, topic, f, err)
}

// diverted reports a successful lane write to l.Diverted, and returns err.
func (l Lanes) diverted(msg *message.Message, lane string, f wire.Failure, err error) error {
	if err == nil && l.Diverted != nil {
		l.Diverted(msg, lane, f)
	}
	return err
}

// Reason classifies err into one of the Reason constants.
func Reason(err error) string {
	var p *PermanentError
	var pe *PanicError
	switch {
	case errors.As(err, &p) && p.Reason != "":
		return p.Reason
	case errors.As(err, &pe):
		return wire.ReasonPanic
	case errors.As(err, &p):
		return wire.ReasonPermanent
	case errors.Is(err, context.DeadlineExceeded):
		return wire.ReasonTimeout
	default:
		return wire.ReasonError
	}
}

// errorText is err's text, without the "permanent: " mark of a
// PermanentError returned as is: the reason records that.
func errorText(err error) string {
	if p, ok := err.(*PermanentError); ok {
		return p.Err.Error()
	}
	return err.Error()
}

// errorType names the type at the end of err's Unwrap chain, past
// PermanentError and fmt wrappers, e.g. "*fs.PathError".
func errorType(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return reflect.TypeOf(err).String()
		}
		err = next
	}
}

// WaitDue returns how long the consumer of a retry lane should wait before
// handling a message, for transports that cannot delay on the broker: until
// the message's wire.MetaDue, but never longer than its tier's delay in delays
// measured from now, on the consumer's clock, so a far-future due time
// (clock skew, an edited record) cannot hold the lane. A message without a
// valid due time, from a tier delays no longer has, or already due waits 0.
func WaitDue(md message.Metadata, delays []time.Duration, now time.Time) time.Duration {
	due, err := time.Parse(time.RFC3339Nano, md.Get(wire.MetaDue))
	if err != nil {
		return 0
	}
	tier, err := strconv.Atoi(md.Get(wire.MetaTier))
	if err != nil || tier < 1 || tier > len(delays) {
		return 0
	}
	return max(0, min(due.Sub(now), delays[tier-1]))
}
