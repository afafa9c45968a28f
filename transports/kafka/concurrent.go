package kafka

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
)

// concurrent is one consumer of ConsumeConcurrent: it takes batches as a
// consumer of Consume does, hands their records out in offset order without
// waiting for their outcomes, and settles them (records acks, hands nacked
// ones out again) in any order, all on its one goroutine. It waits for
// outcomes itself, with one select over the messages in flight, rather
// than with a goroutine per message: a settlement wakes one goroutine, not
// two, and nothing is started per message (with a goroutine per message,
// LatenessAtScale's p99 under -race was 0.4-2.9s; with the select,
// 0.25-1.2s).
type concurrent struct {
	m      *member
	ctx    context.Context
	limit  int
	handle func(*message.Message)

	flights []flight             // handed out, not settled, in hand-out order
	cases   []reflect.SelectCase // wait's, reused
}

// flight is one message handed out and not settled.
type flight struct {
	msg *message.Message
	r   *kgo.Record
	b   *handout
}

// handout is one batch the consumer took: its messages' context (the
// consumer's, cancelled also when the partition's revoke grace ends), and
// how many references keep it in flight, one while it is handed out and one
// per message not settled. A batch counts against its partition's window
// only while it is handed out, so the partition's next batch follows at
// once, but the partition stays in flight until each of its messages is
// settled, so that a revoke waits for them (up to its grace) before it
// commits. Only the consumer's goroutine touches it.
type handout struct {
	p        *part
	ctx      context.Context
	cancel   context.CancelFunc
	stop     func() bool
	refs     int
	requeued int64 // p.requeued when taken
}

// consumeConcurrent runs a concurrent consumer until ctx ends or the
// subscriber or the transport closes, then waits for the messages in
// flight: see transports.ConcurrentConsumer.
func (m *member) consumeConcurrent(ctx context.Context, limit int, handle func(*message.Message)) {
	c := &concurrent{m: m, ctx: ctx, limit: max(limit, 1), handle: handle}
	c.run()
	c.drain()
}

func (c *concurrent) run() {
	m := c.m
	var (
		b     *handout
		batch []*kgo.Record
	)
	defer func() {
		if b != nil {
			c.handedOut(b, batch)
		}
	}()
	for {
		// A nacked record of the partition came back: give the rest of the
		// batch back too, so that it is handed out again before them.
		if b != nil && (len(batch) == 0 || isDone(b.p.gone) || b.p.requeued.Load() != b.requeued) {
			c.handedOut(b, batch)
			b, batch = nil, nil
		}
		if c.stops() {
			return
		}
		if b == nil {
			p, taken, wake := m.take(c.ctx)
			if p == nil {
				if wake == nil {
					return
				}
				c.wait(wake, nil)
				continue
			}
			b, batch = c.newHandout(p), taken
			continue
		}
		if len(c.flights) >= c.limit {
			c.reap()
			if len(c.flights) >= c.limit {
				c.wait(nil, b.p.gone)
				continue
			}
		}
		r := batch[0]
		batch = batch[1:]
		msg := unmarshal(r)
		msg.SetContext(b.ctx)
		b.refs++
		c.flights = append(c.flights, flight{msg: msg, r: r, b: b})
		c.handle(msg)
	}
}

// stops reports whether the consumer hands out no more: its ctx ended, or
// the subscriber or the transport closes.
func (c *concurrent) stops() bool {
	select {
	case <-c.ctx.Done():
		return true
	case <-c.m.s.closed:
		return true
	case <-c.m.s.t.closed:
		return true
	default:
		return false
	}
}

// closing reports whether the subscriber or the transport closes.
func (c *concurrent) closing() bool {
	return isDone(c.m.s.closed) || isDone(c.m.s.t.closed)
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// drain waits until every message in flight is settled, or given back
// because the subscriber or the transport closes.
func (c *concurrent) drain() {
	c.reap()
	for {
		if len(c.flights) == 0 {
			return
		}
		if c.closing() {
			for _, f := range c.flights {
				c.settle(f, isDone(f.msg.Acked()), false) // unacked: the next owner has it
			}
			c.flights = nil
			return
		}
		c.wait(nil, nil)
	}
}

// reap settles the messages in flight whose outcome is known.
func (c *concurrent) reap() {
	kept := c.flights[:0]
	for _, f := range c.flights {
		select {
		case <-f.msg.Acked():
			c.settle(f, true, false)
		case <-f.msg.Nacked():
			c.settle(f, false, true)
		default:
			kept = append(kept, f)
		}
	}
	clear(c.flights[len(kept):])
	c.flights = kept
}

// settle records the outcome of f: an ack for the commit, a nack for
// handing its record out again.
func (c *concurrent) settle(f flight, acked, nacked bool) {
	if acked {
		f.b.p.track.ack(f.r.Offset)
	} else if nacked {
		c.m.nackedLater(f.b.p, f.r)
	}
	c.release(f.b)
}

// wait blocks until a message in flight is settled, wake or gone is
// closed, or the subscriber or the transport closes, then reaps; ctx counts
// only while there is something to hand out (drain waits past it).
func (c *concurrent) wait(wake, gone <-chan struct{}) {
	recv := func(ch <-chan struct{}) {
		c.cases = append(c.cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	c.cases = c.cases[:0]
	recv(c.m.s.closed)
	recv(c.m.s.t.closed)
	if wake != nil || gone != nil {
		recv(c.ctx.Done())
	}
	if wake != nil {
		recv(wake)
	}
	if gone != nil {
		recv(gone)
	}
	for _, f := range c.flights {
		recv(f.msg.Acked())
		recv(f.msg.Nacked())
	}
	reflect.Select(c.cases)
	clear(c.cases) // drop the channels of settled messages
	c.reap()
}

func (c *concurrent) newHandout(p *part) *handout {
	ctx, cancel := context.WithCancel(c.ctx)
	return &handout{p: p, ctx: ctx, cancel: cancel, stop: context.AfterFunc(p.ctx, cancel), refs: 1, requeued: p.requeued.Load()}
}

// handedOut ends the hand-out of b: rest, the records not handed out, go
// back to the partition's queue, and the partition's next batch can be
// taken.
func (c *concurrent) handedOut(b *handout, rest []*kgo.Record) {
	m := c.m
	m.mu.Lock()
	b.p.handing--
	if !b.p.revoked {
		m.requeue(b.p, rest)
	}
	m.makeReady(b.p)
	m.signal()
	m.mu.Unlock()
	c.release(b)
}

// release drops a reference of b; the last one ends the batch.
func (c *concurrent) release(b *handout) {
	b.refs--
	if b.refs > 0 {
		return
	}
	b.stop()
	b.cancel()
	c.m.mu.Lock()
	b.p.settled()
	c.m.mu.Unlock()
}

// nackedLater hands r, nacked, out again after Config.NackDelay, before
// the records of its partition behind it, unless the partition is revoked
// by then.
func (m *member) nackedLater(p *part, r *kgo.Record) {
	time.AfterFunc(m.s.t.cfg.NackDelay, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if p.revoked {
			return
		}
		m.requeue(p, []*kgo.Record{r})
		p.requeued.Add(1)
		m.makeReady(p)
		m.signal()
	})
}

// requeue puts recs, in offset order, back into p's queue, which stays in
// offset order. m.mu is held.
func (m *member) requeue(p *part, recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	m.queued += len(recs)
	if len(p.queue) == 0 || recs[len(recs)-1].Offset < p.queue[0].Offset {
		p.queue = append(recs[:len(recs):len(recs)], p.queue...)
		return
	}
	for _, r := range recs {
		i, _ := slices.BinarySearchFunc(p.queue, r.Offset, func(q *kgo.Record, off int64) int {
			return cmp.Compare(q.Offset, off)
		})
		p.queue = slices.Insert(p.queue, i, r)
	}
}
