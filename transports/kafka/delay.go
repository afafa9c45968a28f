package kafka

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxDelay is the longest delay PublishDelayed accepts (Features().MaxDelay).
const MaxDelay = 30 * 24 * time.Hour

// delayUnit is the granularity of the wait levels: a delay that is not a
// whole number of units is rounded up, never down.
const delayUnit = 100 * time.Millisecond

// leftHeader carries, on a record in a wait topic, how many milliseconds it
// still waits after its hold in that topic. It is removed when the record
// reaches its destination.
const leftHeader = "busline_delay_left_ms"

// waitInfix separates a destination topic from the level of its wait topic:
// <destination>.delay.<milliseconds>.
const waitInfix = ".delay."

// level returns the wait level for a delay d: the largest level not above
// d, or delayUnit for a delay shorter than that. Levels are m×2^e units for
// m in 4..7 (and 1..3 units), so a delay needs a few levels at most, a
// destination has a bounded number of wait topics (at most four per
// doubling of the delays used), and each level keeps its records due in
// offset order: a record is held exactly its level after it was stored.
func level(d time.Duration) time.Duration {
	u := uint64(d / delayUnit)
	if u < 1 {
		return delayUnit
	}
	if u >= 8 {
		e := bits.Len64(u) - 3
		u = (u >> e) << e
	}
	return time.Duration(u) * delayUnit
}

// waitTopic names destination's wait topic for level l.
func waitTopic(destination string, l time.Duration) string {
	return destination + waitInfix + strconv.FormatInt(l.Milliseconds(), 10)
}

// parseWaitTopic splits a wait topic into its destination and level.
func parseWaitTopic(topic string) (destination string, l time.Duration, ok bool) {
	i := strings.LastIndex(topic, waitInfix)
	if i <= 0 {
		return "", 0, false
	}
	ms, err := strconv.ParseInt(topic[i+len(waitInfix):], 10, 64)
	if err != nil || ms <= 0 || time.Duration(ms)*time.Millisecond%delayUnit != 0 {
		return "", 0, false
	}
	l = time.Duration(ms) * time.Millisecond
	if level(l) != l {
		return "", 0, false
	}
	return topic[:i], l, true
}

// PublishDelayed publishes msgs to topic once delay has passed (see
// transports.Delayer). The messages are stored at once in a wait topic of
// topic, <topic>.delay.<level in ms>, and moved on by the mover that every
// subscriber of topic runs: held in each level exactly that level, then
// to the next lower level or, once due, to topic with their key, headers
// and payload unchanged. It returns once the brokers acknowledged the
// messages. A delay that is not a whole number of 100ms is rounded up; a
// delay of zero or less publishes at once; a delay above MaxDelay is
// refused.
func (t *Transport) PublishDelayed(ctx context.Context, topic string, delay time.Duration, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if delay <= 0 {
		return t.produce(ctx, topic, msgs, nil)
	}
	if delay > MaxDelay {
		return fmt.Errorf("kafka transport: delay %v to %q is above the %v the transport keeps messages waiting (Features().MaxDelay)", delay, topic, MaxDelay)
	}
	if err := t.ensureTopic(ctx, topic); err != nil {
		return err
	}
	l := level(delay)
	left := max(0, delay-l)
	wait := waitTopic(topic, l)
	created := !t.knownTopic(wait)
	now := time.Now()
	err := t.produce(ctx, wait, msgs, func(r *kgo.Record) {
		r.Timestamp = now
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: leftHeader, Value: []byte(formatLeft(left))})
	})
	if err != nil {
		return err
	}
	if created {
		t.waitTopicAdded(topic)
	}
	return nil
}

// formatLeft formats a remaining wait in milliseconds, rounded up.
func formatLeft(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10)
}

// knownTopic reports whether the transport created or saw topic.
func (t *Transport) knownTopic(topic string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.topics[topic]
}

// waitTopicAdded tells the local mover of destination, if any, about its
// new wait topic now rather than at its next metadata refresh, starting it
// if it was not.
func (t *Transport) waitTopicAdded(destination string) {
	t.mu.Lock()
	mv := t.movers[destination]
	var cl *kgo.Client
	if mv != nil {
		cl = mv.cl
	}
	t.mu.Unlock()
	switch {
	case mv == nil:
	case cl == nil:
		t.startMover(destination)
	default:
		cl.ForceMetadataRefresh()
	}
}
