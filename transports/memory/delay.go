package memory

import (
	"container/heap"
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Clock is the time source of the transport's timer heap (PublishDelayed).
// Config.Clock nil means real time; a fake clock, such as package bustest's,
// lets a test move time forward so that delayed messages become due without
// the test sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time

	// AfterFunc calls f, on a goroutine of the clock's choosing, once d has
	// passed on this clock (at once when d <= 0), as time.AfterFunc does.
	// stop cancels the call and reports whether it did: false means f has
	// run or is running.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// delayed is a publish waiting for its due time.
type delayed struct {
	due   time.Time
	seq   uint64 // publish order, so that equal due times keep it
	topic string
	msgs  []*message.Message
}

// delayHeap orders waiting publishes by due time, then publish order.
type delayHeap []*delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(*delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return d
}

// PublishDelayed keeps copies of msgs in the transport's timer heap and
// publishes them to topic once delay has passed on the transport's clock
// (Config.Clock), to every group provisioned on topic then. One timer per
// transport, armed for the earliest due time, serves the heap; a waiting
// message holds nothing else, and Close stops the timer. Waiting messages
// are lost with the process or on Close, like everything in this transport.
// Delivery is late by the latency of the clock's timer only.
func (t *Transport) PublishDelayed(ctx context.Context, topic string, delay time.Duration, msgs ...*message.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.refuse(msgs); err != nil {
		return err
	}
	if delay <= 0 {
		return t.publish(topic, msgs)
	}
	copies := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		copies[i] = stored(m)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return ErrClosed
	}
	due := t.clock.Now().Add(delay)
	t.delaySeq++
	heap.Push(&t.delays, &delayed{due: due, seq: t.delaySeq, topic: topic, msgs: copies})
	if t.timerStop == nil || due.Before(t.timerDue) {
		t.armTimer()
	}
	return nil
}

// armTimer (re)arms the heap's timer for the earliest due time, or leaves
// it unarmed when nothing waits. t.mu is held.
//
// A timer that could not be stopped in time still fires: fireDue then only
// moves what is due, and leaves the timer armed after it in place, so that
// while anything waits one armed timer is due no later than the heap's head.
func (t *Transport) armTimer() {
	if t.timerStop != nil {
		t.timerStop()
		t.timerStop = nil
	}
	if len(t.delays) == 0 {
		return
	}
	t.timerGen++
	gen := t.timerGen
	t.timerDue = t.delays[0].due
	t.timerStop = t.clock.AfterFunc(t.timerDue.Sub(t.clock.Now()), func() { t.fireDue(gen) })
}

// fireDue publishes every waiting message that is due, and re-arms the
// timer if the one that fired, gen, is the current one.
// The lock is released between publishes, so that publishers (lane writes
// of the handlers consuming what it moves) are not held up behind a long
// run of due messages.
func (t *Transport) fireDue(gen uint64) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for !t.isClosed() {
		if len(t.delays) == 0 || now.Before(t.delays[0].due) {
			if gen == t.timerGen {
				t.timerStop = nil // it fired
				t.armTimer()
			}
			return
		}
		next := heap.Pop(&t.delays).(*delayed)
		for _, q := range t.topics[next.topic] {
			q.push(next.msgs)
		}
		t.mu.Unlock()
		t.mu.Lock()
	}
}

// Waiting returns how many publishes wait in the transport for their due
// time.
func (t *Transport) Waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.delays)
}
