package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

// member is one subscriber's member of its consumer group on one topic. The
// Subscribe calls on that topic are its consumers: each takes one message at
// a time from the partitions the member was assigned.
type member struct {
	s     *subscriber
	topic string
	// deliveries carries messages from the partitions to the consumers.
	deliveries chan *delivery

	mu        sync.Mutex
	consumers int
	stopped   bool
	stop      chan struct{} // closed when the last consumer leaves
	lastErr   error         // why the member is not in the group, nil once it is
}

func newMember(s *subscriber, topic string) *member {
	return &member{s: s, topic: topic, deliveries: make(chan *delivery), stop: make(chan struct{})}
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

// window is how many messages of one partition may be in flight: one per
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

// forward is one consumer: it hands out one message at a time on out and
// reports its outcome to the partition it came from.
func (m *member) forward(ctx context.Context, out chan<- *message.Message) {
	for {
		var d *delivery
		select {
		case d = <-m.deliveries:
		case <-ctx.Done():
			return
		case <-m.s.closed:
			return
		case <-m.s.t.closed:
			return
		}
		if !m.deliver(ctx, d, out) {
			return
		}
	}
}

// consume is one consumer that runs handle on its own goroutine.
func (m *member) consume(ctx context.Context, handle func(*message.Message)) {
	for {
		var d *delivery
		select {
		case d = <-m.deliveries:
		case <-ctx.Done():
			return
		case <-m.s.closed:
			return
		case <-m.s.t.closed:
			return
		}
		if ctx.Err() != nil || m.s.isClosed() || m.s.t.isClosed() {
			d.report(false) // taken as the consumer ended: back to its partition
			return
		}
		d.msg.SetContext(ctx)
		handle(d.msg)
		select {
		case <-d.msg.Acked():
			d.report(true)
		default:
			d.report(false) // nacked, or neither
		}
	}
}

// deliver hands d to the consumer and waits for the outcome; false ends the
// consumer.
func (m *member) deliver(ctx context.Context, d *delivery, out chan<- *message.Message) bool {
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.msg.SetContext(msgCtx)
	delivered := false
	select {
	case out <- d.msg:
		delivered = true
	case <-ctx.Done():
	case <-m.s.closed:
	case <-m.s.t.closed:
	}
	if !delivered {
		d.report(false) // never handed out: back to its partition
		return false
	}
	select {
	case <-d.msg.Acked():
		d.report(true)
		return true
	case <-d.msg.Nacked():
		d.report(false)
		return true
	case <-ctx.Done():
	case <-m.s.closed:
	case <-m.s.t.closed:
	}
	// The consumer is ending. The message may have been acked at the same
	// moment (select picks among ready cases at random): report that ack,
	// or its commit is lost and the message delivered again.
	select {
	case <-d.msg.Acked():
		d.report(true)
	default:
		d.report(false)
	}
	return false
}

// delivery is one record handed to a consumer, with the way back to its
// partition.
type delivery struct {
	msg  *message.Message
	item *item
	p    *partition
}

func (d *delivery) report(acked bool) {
	select {
	case d.p.outcomes <- outcome{item: d.item, acked: acked}:
	case <-d.p.done:
	}
}

type item struct {
	rec    *sarama.ConsumerMessage
	pushed bool // handed out at least once: its offset is pending
}

type outcome struct {
	item  *item
	acked bool
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
		outcomes: make(chan outcome),
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

// partition hands one partition's records to the member's consumers, at most
// window() at a time, in offset order, and marks an offset for commit once
// it and every offset before it were acked. A nacked record is handed out
// again after Config.NackDelay, before the records behind it.
type partition struct {
	m        *member
	sess     sarama.ConsumerGroupSession
	claim    sarama.ConsumerGroupClaim
	outcomes chan outcome
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
	var head *delivery
	for {
		if stopping && p.inflight == 0 {
			// A rebalance: every message handed out came back, so the
			// session commits exactly what was acked.
			return
		}
		var push chan<- *delivery
		if !stopping && len(p.queue) > 0 && p.inflight < p.m.window() {
			if head == nil {
				head = &delivery{msg: unmarshal(p.queue[0].rec), item: p.queue[0], p: p}
			}
			push = p.m.deliveries
		}
		var next <-chan *sarama.ConsumerMessage
		if !stopping && len(p.queue) == 0 {
			next = records
		}
		select {
		case push <- head:
			p.inflight++
			if !head.item.pushed {
				head.item.pushed = true
				p.pending = append(p.pending, head.item.rec.Offset)
			}
			p.queue = p.queue[1:]
			head = nil
		case rec, ok := <-next:
			if !ok {
				stopping = true
				continue
			}
			p.queue = append(p.queue, &item{rec: rec})
		case o := <-p.outcomes:
			p.inflight--
			if o.acked {
				p.ack(o.item.rec.Offset)
			} else {
				p.redeliverLater(o.item)
			}
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

// ack marks the highest offset below which every handed-out record was acked.
func (p *partition) ack(offset int64) {
	p.acked[offset] = true
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
