package memory

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// queue is one group's first-in, first-out queue of messages on one topic.
type queue struct {
	mu       sync.Mutex
	items    []*message.Message
	inFlight int           // popped and neither acked nor requeued yet
	wake     chan struct{} // closed and replaced whenever items grows
}

func newQueue() *queue {
	return &queue{wake: make(chan struct{})}
}

// push appends copies of msgs, so that neither the publisher nor another
// group can change what this group receives.
func (q *queue) push(msgs []*message.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range msgs {
		q.items = append(q.items, stored(m))
	}
	q.signal()
}

// requeue puts m back at the head, so that a single consumer keeps order.
func (q *queue) requeue(m *message.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append([]*message.Message{m}, q.items...)
	q.inFlight--
	q.signal()
}

// acked records that a popped message was acked.
func (q *queue) acked() {
	q.mu.Lock()
	q.inFlight--
	q.mu.Unlock()
}

// backlog returns how many messages wait or are in flight, and the oldest
// waiting one.
func (q *queue) backlog() (n int, oldest *message.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		oldest = q.items[0]
	}
	return len(q.items) + q.inFlight, oldest
}

func (q *queue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// pop waits for a message until ctx is done; ok is false then.
func (q *queue) pop(ctx context.Context) (m *message.Message, ok bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			m = q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.inFlight++
			q.mu.Unlock()
			return m, true
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// stored returns the copy of m that a queue keeps: same id, metadata and
// payload, none of m's ack state or context.
func stored(m *message.Message) *message.Message {
	c := message.NewMessage(m.UUID, append([]byte(nil), m.Payload...))
	for k, v := range m.Metadata {
		c.Metadata.Set(k, v)
	}
	return c
}

// browse returns copies of up to limit waiting messages (all if limit <= 0).
func (q *queue) browse(limit int) []*message.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	if limit > 0 {
		n = min(n, limit)
	}
	out := make([]*message.Message, n)
	for i := range n {
		out[i] = stored(q.items[i])
	}
	return out
}
