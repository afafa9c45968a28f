package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

// member is one subscriber's member of its consumer group on one topic. The
// Subscribe calls on that topic are its consumers: each takes one message at
// a time from the partitions the member was assigned.
type member struct {
	s     *subscriber
	topic string
	// batches carries records from the partitions to the consumers.
	batches chan *batch

	mu        sync.Mutex
	consumers int
	stopped   bool
	stop      chan struct{} // closed when the last consumer leaves
	lastErr   error         // why the member is not in the group, nil once it is
}

func newMember(s *subscriber, topic string) *member {
	return &member{s: s, topic: topic, batches: make(chan *batch), stop: make(chan struct{})}
}

// acquire adds a consumer; false means the member is stopping.
func (m *member) acquire() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return false
	}
	m.consumers++
	return true
}

// release removes a consumer; the last one stops the member.
func (m *member) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.consumers--
	if m.consumers == 0 && !m.stopped {
		m.stopped = true
		close(m.stop)
	}
}

// window is how many batches of one partition may be in flight: one per
// consumer, so that a single consumer keeps the partition's order.
func (m *member) window() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.consumers, 1)
}

func (m *member) setErr(err error) {
	m.mu.Lock()
	m.lastErr = err
	m.mu.Unlock()
}

func (m *member) joinErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// run keeps the member in its group until it stops, reconnecting with a
// growing pause after errors; it records them for Transport.Health.
func (m *member) run() {
	t := m.s.t
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
		case <-m.s.closed:
		case <-t.closed:
		case <-ctx.Done():
		}
		cancel()
	}()
	const minPause, maxPause = 100 * time.Millisecond, 2 * time.Second
	pause := minPause
	wait := func() {
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
		pause = min(2*pause, maxPause)
	}
	log := t.logger.With("kafka_group", m.s.group, "topic", m.topic)
	for ctx.Err() == nil {
		group, err := sarama.NewConsumerGroup(t.cfg.Brokers, m.s.group, t.consume)
		if err != nil {
			err = t.connError(err)
			m.setErr(err)
			log.Warn("kafka: cannot connect the consumer group", "err", err)
			wait()
			continue
		}
		h := &groupHandler{m: m, ctx: ctx}
		for ctx.Err() == nil {
			err := group.Consume(ctx, []string{m.topic}, h)
			if ctx.Err() != nil {
				break
			}
			if err != nil {
				err = t.redact(err)
				m.setErr(err)
				log.Warn("kafka: consumer group cannot join; retrying", "err", err)
				break // a new connection, after a pause
			}
			pause = minPause
		}
		if err := group.Close(); err != nil {
			log.Debug("kafka: close consumer group", "err", t.redact(err))
		}
		if ctx.Err() == nil {
			wait()
		}
	}
}

// forward is one consumer: it takes a batch of one partition's records and
// hands its messages out on out one at a time, each after the previous one's
// outcome, then reports the outcomes to the partition.
func (m *member) forward(ctx context.Context, out chan<- *message.Message) {
	m.take(ctx, func(b *batch) bool {
		for i, it := range b.items {
			if !b.open() {
				return true // revoked: the rest go back; the consumer goes on
			}
			if !m.deliver(ctx, unmarshal(it.rec), out, &b.acked[i]) {
				return false
			}
		}
		return true
	})
}

// consume is one consumer that runs handle on its own goroutine, for each
// message of each batch it takes.
func (m *member) consume(ctx context.Context, handle func(*message.Message)) {
	m.take(ctx, func(b *batch) bool {
		for i, it := range b.items {
			if ctx.Err() != nil || m.ending() {
				return false // the rest go back to the partition
			}
			if !b.open() {
				return true // revoked: the rest go back; the consumer goes on
			}
			b.acked[i] = transports.Handle(ctx, unmarshal(it.rec), handle)
		}
		return true
	})
}

// take runs handle on the batches it takes until ctx is done, the subscriber
// or transport closes, or handle returns false; every batch's outcomes are
// reported to its partition, a message never handed out as not acked.
func (m *member) take(ctx context.Context, handle func(b *batch) bool) {
	for {
		var b *batch
		select {
		case b = <-m.batches:
		case <-ctx.Done():
			return
		case <-m.s.closed:
			return
		case <-m.s.t.closed:
			return
		}
		ok := handle(b)
		b.report()
		if !ok {
			return
		}
	}
}

// ending reports whether the subscriber or the transport is closing.
func (m *member) ending() bool { return m.s.isClosed() || m.s.t.isClosed() }

// deliver hands msg to the consumer and waits for the outcome, which it
// stores in acked; false ends the consumer.
func (m *member) deliver(ctx context.Context, msg *message.Message, out chan<- *message.Message, acked *bool) bool {
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(msgCtx)
	select {
	case out <- msg:
	case <-ctx.Done():
		return false // never handed out: back to its partition
	case <-m.s.closed:
		return false
	case <-m.s.t.closed:
		return false
	}
	select {
	case <-msg.Acked():
		*acked = true
		return true
	case <-msg.Nacked():
		return true
	case <-ctx.Done():
	case <-m.s.closed:
	case <-m.s.t.closed:
	}
	// The consumer is ending. The message may have been acked at the same
	// moment (select picks among ready cases at random): report that ack,
	// or its commit is lost and the message delivered again.
	select {
	case <-msg.Acked():
		*acked = true
	default:
	}
	return false
}

const (
	// maxBatch caps the records of one batch.
	maxBatch = 64
	// maxQueue caps the records a partition reads ahead of its consumers.
	maxQueue = 4 * maxBatch
)

// batch is consecutive records of one partition handed to one consumer,
// which handles them in order and reports all their outcomes at once: one
// hand-over per batch rather than two per message.
type batch struct {
	p     *partition
	items []*item
	acked []bool // set by the consumer
}

// open reports whether the batch's partition is still assigned: once its
// session ends, the messages not yet handled go back unhandled, so that the
// partition's next owner is the only one to handle them.
func (b *batch) open() bool { return b.p.sess.Context().Err() == nil }

func (b *batch) report() {
	select {
	case b.p.outcomes <- b:
	case <-b.p.done:
	}
}

type item struct {
	rec    *sarama.ConsumerMessage
	pushed bool // handed out at least once: its offset is pending
}

// groupHandler serves the partitions a session assigns to the member.
type groupHandler struct {
	m   *member
	ctx context.Context // the member's: done when it stops
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error {
	h.m.setErr(nil)
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := &partition{
		m:        h.m,
		sess:     sess,
		claim:    claim,
		outcomes: make(chan *batch),
		redo:     make(chan *item),
		done:     make(chan struct{}),
		acked:    map[int64]bool{},
	}
	defer close(p.done)
	p.run(h.ctx)
	return nil
}

// outcomeWait bounds how long a stopping partition waits for the outcomes of
// the messages it handed out.
const outcomeWait = 5 * time.Second

// partition hands one partition's records to the member's consumers in
// batches, at most window() at a time, in offset order, and marks an offset for commit once
// it and every offset before it were acked. A nacked record is handed out
// again after Config.NackDelay, before the records behind it.
type partition struct {
	m        *member
	sess     sarama.ConsumerGroupSession
	claim    sarama.ConsumerGroupClaim
	outcomes chan *batch
	redo     chan *item
	done     chan struct{}

	queue    []*item
	pending  []int64 // offsets handed out and not yet acked, ascending
	acked    map[int64]bool
	inflight int
}

func (p *partition) run(memberCtx context.Context) {
	records := p.claim.Messages()
	sessDone := p.sess.Context().Done()
	memberDone := memberCtx.Done()
	var giveUp <-chan time.Time
	stopping := false
	var head *batch
	for {
		if stopping && p.inflight == 0 {
			// A rebalance: every message handed out came back, so the
			// session commits exactly what was acked.
			return
		}
		var push chan<- *batch
		if !stopping && len(p.queue) > 0 && p.inflight < p.m.window() {
			if head == nil {
				head = p.nextBatch()
			}
			push = p.m.batches
		}
		var next <-chan *sarama.ConsumerMessage
		if !stopping && len(p.queue) < maxQueue {
			next = records
		}
		select {
		case push <- head:
			p.inflight++
			for _, it := range head.items {
				if !it.pushed {
					it.pushed = true
					p.pending = append(p.pending, it.rec.Offset)
				}
			}
			p.queue = p.queue[len(head.items):]
			head = nil
		case rec, ok := <-next:
			if !ok {
				stopping = true
				continue
			}
			p.queue = append(p.queue, &item{rec: rec})
			if head != nil && len(head.items) < maxBatch {
				head = nil // the next batch can be larger
			}
		case b := <-p.outcomes:
			p.inflight--
			p.settle(b)
		case it := <-p.redo:
			p.queue = append([]*item{it}, p.queue...)
			head = nil
		case <-sessDone:
			stopping, sessDone = true, nil
		case <-memberDone:
			// The member stops. Keep taking the outcomes of the messages
			// handed out, for a bounded time: an ack reported as the
			// member stops must still mark its offset, or the message is
			// delivered again after a graceful shutdown.
			stopping, memberDone = true, nil
			giveUp = time.After(outcomeWait)
		case <-giveUp:
			return
		}
	}
}

// nextBatch takes the head of the queue: up to maxBatch records, shared
// out among the consumers the window allows.
func (p *partition) nextBatch() *batch {
	n := len(p.queue)
	if w := p.m.window(); w > 1 {
		n = (n + w - 1) / w
	}
	n = min(n, maxBatch)
	return &batch{p: p, items: p.queue[:n:n], acked: make([]bool, n)}
}

// settle marks the acked records of b and redelivers the others later.
func (p *partition) settle(b *batch) {
	for i, it := range b.items {
		if b.acked[i] {
			p.acked[it.rec.Offset] = true
		} else {
			p.redeliverLater(it)
		}
	}
	var last int64 = -1
	for len(p.pending) > 0 && p.acked[p.pending[0]] {
		last = p.pending[0]
		delete(p.acked, last)
		p.pending = p.pending[1:]
	}
	if last >= 0 {
		p.sess.MarkOffset(p.claim.Topic(), p.claim.Partition(), last+1, "")
	}
}

func (p *partition) redeliverLater(it *item) {
	delay := p.m.s.t.cfg.NackDelay
	time.AfterFunc(delay, func() {
		select {
		case p.redo <- it:
		case <-p.done:
		}
	})
}
