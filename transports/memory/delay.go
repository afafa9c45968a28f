package memory

import (
	"container/heap"
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

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
// publishes them to topic once delay has passed, to every group provisioned
// on topic then. One goroutine per transport serves the heap, started by the
// first delayed publish and ended by Close; a waiting message holds nothing
// else. Waiting messages are lost with the process or on Close, like
// everything in this transport. Delivery is late by the scheduling latency
// of that goroutine only.
func (t *Transport) PublishDelayed(_ context.Context, topic string, delay time.Duration, msgs ...*message.Message) error {
	if delay <= 0 {
		return t.publish(topic, msgs)
	}
	copies := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		copies[i] = stored(m)
	}
	due := time.Now().Add(delay)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return ErrClosed
	}
	t.delaySeq++
	heap.Push(&t.delays, &delayed{due: due, seq: t.delaySeq, topic: topic, msgs: copies})
	if !t.delayRunning {
		t.delayRunning = true
		t.delayDone = make(chan struct{})
		go t.serveDelays()
	}
	select {
	case t.delayWake <- struct{}{}:
	default:
	}
	return nil
}

// serveDelays publishes each waiting message when it is due, until Close.
func (t *Transport) serveDelays() {
	defer close(t.delayDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t.mu.Lock()
		var next *delayed
		if len(t.delays) > 0 {
			next = t.delays[0]
			if !time.Now().Before(next.due) {
				heap.Pop(&t.delays)
				for _, q := range t.topics[next.topic] {
					q.push(next.msgs)
				}
				t.mu.Unlock()
				continue
			}
		}
		t.mu.Unlock()
		var fire <-chan time.Time
		if next != nil {
			timer.Reset(time.Until(next.due))
			fire = timer.C
		}
		select {
		case <-t.closed:
			return
		case <-t.delayWake:
		case <-fire:
		}
	}
}

// Waiting returns how many publishes wait in the transport for their due
// time.
func (t *Transport) Waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.delays)
}
