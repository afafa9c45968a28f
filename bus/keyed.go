package bus

import (
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// keyedQueue sets how many messages may be in flight per keyed worker:
// the consumer keeps at most keyedQueue+1 per worker unsettled in all
// (ConcurrentConsumer's limit), however they spread over the keys.
const keyedQueue = 2

// consumeKeyed runs w as one consumer of its topic whose messages are spread
// over w.keyed workers by their key (ce_partitionkey): the messages of one
// key run one at a time in delivery order on the key's worker, and
// different keys run in parallel. A message without a key has no order to
// keep and goes to the worker with the fewest messages, waiting or running. Acks then complete
// out of order, which the transport settles as ConcurrentConsumer says.
//
// Handing a message to its worker never waits: each worker's queue is
// unbounded, and the transport's limit bounds what all of them hold
// together. So a run of messages of one busy key does not hold up the keys
// behind it, until the limit is reached.
func (b *Bus) consumeKeyed(c transports.ConcurrentConsumer, w worker) error {
	queues := make([]*workQueue, w.keyed)
	for i := range queues {
		queues[i] = newWorkQueue()
	}
	done, err := c.ConsumeConcurrent(b.stopCtx, w.topic, w.keyed*(keyedQueue+1), func(msg *message.Message) {
		if b.isClosed() {
			msg.Nack() // taken as Close started: left for redelivery
			return
		}
		if key := msg.Metadata.Get(wire.MetaPartitionKey); key != "" {
			queues[keyIndex(key, len(queues))].push(msg)
			return
		}
		least := queues[0]
		for _, q := range queues[1:] {
			if q.load() < least.load() {
				least = q
			}
		}
		least.push(msg)
	})
	w.health.started(w.topic, err)
	if err != nil {
		return fmt.Errorf("consume %s: %w", w.topic, err)
	}
	for _, q := range queues {
		b.workers.Go(func() {
			for {
				msg, ok := q.pop()
				if !ok {
					return
				}
				if b.isClosed() {
					msg.Nack() // queued as Close started: left for redelivery
				} else {
					b.handle(msg, w)
				}
				q.finished()
			}
		})
	}
	b.workers.Go(func() {
		<-done
		for _, q := range queues {
			q.close()
		}
		w.health.ended(w.topic)
	})
	return nil
}

// workQueue is one keyed worker's queue: a FIFO that push never blocks on.
type workQueue struct {
	mu     sync.Mutex
	items  []*message.Message
	held   int // messages pushed and not finished: waiting or running
	closed bool
	wake   chan struct{} // holds a token while items or closed may be new to the worker
}

func newWorkQueue() *workQueue { return &workQueue{wake: make(chan struct{}, 1)} }

func (q *workQueue) push(msg *message.Message) {
	q.mu.Lock()
	q.items = append(q.items, msg)
	q.held++
	q.mu.Unlock()
	q.signal()
}

// finished records that the worker is done with a message pop returned.
func (q *workQueue) finished() {
	q.mu.Lock()
	q.held--
	q.mu.Unlock()
}

// load is how many messages the worker holds, waiting or running.
func (q *workQueue) load() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held
}

// close makes pop report false once the queue is empty.
func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *workQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop waits for the next message; ok is false once the queue is closed and
// empty.
func (q *workQueue) pop() (msg *message.Message, ok bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			msg = q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return msg, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.wake
	}
}

// keyIndex picks the worker of key among n.
func keyIndex(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
