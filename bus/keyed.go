package bus

import (
	"fmt"
	"hash/fnv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// keyedQueue is how many messages wait for each keyed worker; with the ones
// running, the consumer keeps at most keyedQueue+1 per worker in flight.
const keyedQueue = 2

// consumeKeyed runs w as one consumer of its topic whose messages are spread
// over w.keyed workers by their key (ce_partitionkey): the messages of one
// key run one at a time in delivery order on the key's worker, and
// different keys run in parallel. A message without a key has no order to
// keep and goes to whichever worker is free first. Acks then complete out
// of order, which the transport settles as ConcurrentConsumer says.
func (b *Bus) consumeKeyed(c transports.ConcurrentConsumer, w worker) error {
	keyed := make([]chan *message.Message, w.keyed)
	for i := range keyed {
		keyed[i] = make(chan *message.Message, keyedQueue)
	}
	// Unkeyed messages queue too, so that the delivery goroutine hands them
	// over without waiting for a worker to be scheduled each time; the
	// transport's limit still bounds what is in flight.
	unkeyed := make(chan *message.Message, w.keyed*keyedQueue)
	done, err := c.ConsumeConcurrent(b.stopCtx, w.topic, w.keyed*(keyedQueue+1), func(msg *message.Message) {
		if b.isClosed() {
			msg.Nack() // taken as Close started: left for redelivery
			return
		}
		queue := unkeyed
		if key := msg.Metadata.Get(wire.MetaPartitionKey); key != "" {
			queue = keyed[keyIndex(key, len(keyed))]
		}
		select {
		case queue <- msg:
		case <-b.stopCtx.Done():
			msg.Nack()
		}
	})
	w.health.started(w.topic, err)
	if err != nil {
		return fmt.Errorf("consume %s: %w", w.topic, err)
	}
	for _, own := range keyed {
		b.workers.Go(func() {
			own, shared := own, unkeyed
			for own != nil || shared != nil {
				var msg *message.Message
				var ok bool
				select {
				case msg, ok = <-own:
					if !ok {
						own = nil
						continue
					}
				case msg, ok = <-shared:
					if !ok {
						shared = nil
						continue
					}
				}
				if b.isClosed() {
					msg.Nack() // queued as Close started: left for redelivery
					continue
				}
				b.handle(msg, w)
			}
		})
	}
	b.workers.Go(func() {
		<-done
		for _, q := range keyed {
			close(q)
		}
		close(unkeyed)
		w.health.ended(w.topic)
	})
	return nil
}

// keyIndex picks the worker of key among n.
func keyIndex(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
