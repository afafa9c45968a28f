package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

const (
	// maxBatch caps the records a consumer takes from a partition at once.
	maxBatch = 64
	// maxQueued caps the records a member holds fetched and not yet acked.
	maxQueued = 4096
	// pollRecords caps the records of one poll.
	pollRecords = 1024
	// commitTimeout bounds one offset commit.
	commitTimeout = 10 * time.Second
)

// member is one subscriber's member of a Kafka consumer group on one topic,
// a franz-go client of its own. The Subscribe and Consume calls on that
// topic are its consumers: each takes a batch of consecutive records of one
// partition (up to maxBatch, shared out among the consumers), handles them
// one after the other, and gives the rest back if it stops. A partition has
// at most one batch in flight per consumer, so a single consumer keeps its
// order. Each ack is recorded at once: the partition's committed offset is
// its first record not acked, and the records acked beyond it travel in the
// commit's metadata (see ackedBeyond), so that the partition's next owner
// skips them.
type member struct {
	s     *subscriber
	topic string
	group string // the Kafka consumer group
	cl    *kgo.Client
	log   *slog.Logger

	mu        sync.Mutex
	parts     map[int32]*part
	ready     []*part       // partitions with records to hand out, in turn
	wake      chan struct{} // closed, and replaced, when work or room appears
	queued    int           // records fetched and not yet handed out
	consumers int
	stopped   bool
	stopCh    chan struct{} // closed when the last consumer leaves
	lastErr   error         // why the member is not in the group, nil once it is

	commitMu sync.Mutex // serializes commits: a stale one never rewinds a newer
	done     chan struct{}
}

// part is an assigned partition.
type part struct {
	id     int32
	ctx    context.Context // cancelled when a revoke's grace ends, or on close
	cancel context.CancelFunc
	gone   chan struct{} // closed when revoked

	requeued atomic.Int64 // how often a concurrent consumer's nacked record came back to queue

	// Guarded by member.mu.
	queue    []*kgo.Record // fetched, not handed out, in offset order
	handing  int           // batches a consumer is handing out; the window bounds them
	inflight int           // batches taken and not yet settled (handing, or handed out by a concurrent consumer)
	idle     chan struct{} // closed when inflight drops to 0
	inReady  bool
	revoked  bool

	track acks
}

// revoke marks p revoked: none of its records is handed out any more.
// member.mu is held.
func (p *part) revoke() {
	if !p.revoked {
		p.revoked = true
		close(p.gone)
	}
}

// settled ends one batch of p in flight. member.mu is held.
func (p *part) settled() {
	p.inflight--
	if p.inflight == 0 {
		close(p.idle)
	}
}

func newMember(s *subscriber, topic string) *member {
	return &member{
		s: s, topic: topic, group: KafkaGroup(topic, s.group),
		parts: map[int32]*part{}, wake: make(chan struct{}), stopCh: make(chan struct{}), done: make(chan struct{}),
		log: s.t.logger.With("kafka_group", KafkaGroup(topic, s.group), "topic", topic),
	}
}

// start creates the member's client; it joins the group in the background.
func (m *member) start() error {
	t := m.s.t
	cfg := t.cfg
	opts := append(t.opts(),
		kgo.ConsumerGroup(m.group),
		kgo.ConsumeTopics(m.topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.OnPartitionsAssigned(m.assigned),
		kgo.OnOffsetsFetched(m.offsetsFetched),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, r map[string][]int32) { m.revoke(ctx, r[m.topic], true) }),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, l map[string][]int32) { m.revoke(ctx, l[m.topic], false) }),
		kgo.WithHooks(groupErrHook{m}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return t.redact(fmt.Errorf("kafka transport: consumer of %q as %q: %w", m.topic, m.group, err))
	}
	m.cl = cl
	return nil
}

// groupErrHook records why the member cannot join, for Transport.Health.
type groupErrHook struct{ m *member }

func (h groupErrHook) OnGroupManageError(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	err = h.m.s.t.redact(err)
	h.m.setErr(err)
	h.m.log.Warn("kafka: consumer group cannot join; retrying", "err", err)
}

var _ kgo.HookGroupManageError = groupErrHook{}

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
		close(m.stopCh)
		m.signal()
	}
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

// signal wakes every goroutine waiting on m.wake. m.mu is held.
func (m *member) signal() {
	close(m.wake)
	m.wake = make(chan struct{})
}

// ending reports whether the member, its subscriber or the transport stops.
func (m *member) ending() bool {
	select {
	case <-m.stopCh:
		return true
	case <-m.s.closed:
		return true
	case <-m.s.t.closed:
		return true
	default:
		return false
	}
}

// run polls records into the partitions' queues and commits every
// Config.CommitInterval until the member stops; then it waits for the
// consumers to give their batches back, commits what was acked,
// synchronously, and leaves the group.
func (m *member) run() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-m.stopCh:
		case <-m.s.closed:
			m.cancelParts() // a closing subscriber cancels its messages' contexts
		case <-m.s.t.closed:
			m.cancelParts()
		}
		cancel()
	}()
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(m.s.t.cfg.CommitInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				m.commitAll(ctx)
			}
		}
	})
	m.poll(ctx)
	wg.Wait()
	m.waitIdle(m.s.t.cfg.RebalanceTimeout / 2)
	m.commitAll(context.Background())
	m.mu.Lock()
	for _, p := range m.parts {
		p.revoke()
		p.cancel()
	}
	m.mu.Unlock()
	m.cl.Close()
}

// cancelParts cancels the contexts of the messages in flight.
func (m *member) cancelParts() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.parts {
		p.cancel()
	}
}

// poll fetches records until ctx ends, holding at most maxQueued.
func (m *member) poll(ctx context.Context) {
	for ctx.Err() == nil {
		m.mu.Lock()
		full := m.queued >= maxQueued
		wake := m.wake
		m.mu.Unlock()
		if full {
			select {
			case <-wake:
			case <-ctx.Done():
			}
			continue
		}
		fetches := m.cl.PollRecords(ctx, pollRecords)
		if fetches.IsClientClosed() {
			m.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			var ge *kgo.ErrGroupSession
			if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.As(err, &ge) {
				return // group errors are recorded by groupErrHook
			}
			m.log.Warn("kafka: fetch error", "partition", p, "err", m.s.t.redact(err))
		})
		m.mu.Lock()
		added := false
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			p := m.parts[fp.Partition]
			if p == nil || p.revoked || len(fp.Records) == 0 {
				return // not ours any more: its next owner fetches it again
			}
			for _, r := range fp.Records {
				if !p.track.add(r.Offset) {
					p.queue = append(p.queue, r)
					m.queued++
					added = true
				}
			}
			m.makeReady(p)
		})
		if added {
			m.signal()
		}
		m.mu.Unlock()
		m.cl.AllowRebalance()
	}
}

// window is how many batches of one partition may be in flight: one per
// consumer, so that a single consumer keeps the partition's order. m.mu is
// held.
func (m *member) window() int { return max(m.consumers, 1) }

// makeReady queues p for a consumer if it has records to hand out and room
// in its window. m.mu is held.
func (m *member) makeReady(p *part) {
	if p.inReady || p.revoked || len(p.queue) == 0 || p.handing >= m.window() {
		return
	}
	p.inReady = true
	m.ready = append(m.ready, p)
}

// assigned adds the partitions the group gave the member.
func (m *member) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = nil
	for _, id := range assigned[m.topic] {
		if p := m.parts[id]; p != nil && !p.revoked {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.parts[id] = &part{id: id, ctx: ctx, cancel: cancel, gone: make(chan struct{}), track: newAcks()}
	}
}

// offsetsFetched restores, for the partitions just assigned, which records
// beyond the committed offset an earlier owner acked.
func (m *member) offsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	restore := func(topic string, partitions []kmsg.OffsetFetchResponseTopicPartition) {
		if topic != m.topic {
			return
		}
		for _, rp := range partitions {
			if p := m.parts[rp.Partition]; p != nil && rp.Metadata != nil {
				p.track.restore(rp.Offset, *rp.Metadata)
			}
		}
	}
	for _, rt := range resp.Topics {
		restore(rt.Topic, rt.Partitions)
	}
	for _, g := range resp.Groups {
		for _, rt := range g.Topics {
			parts := make([]kmsg.OffsetFetchResponseTopicPartition, 0, len(rt.Partitions))
			for _, gp := range rt.Partitions {
				p := kmsg.NewOffsetFetchResponseTopicPartition()
				p.Partition, p.Offset, p.Metadata = gp.Partition, gp.Offset, gp.Metadata
				parts = append(parts, p)
			}
			restore(rt.Topic, parts)
		}
	}
	return nil
}

// revoke takes partitions away: no record of theirs is handed out any
// more; a consumer in the middle of one finishes it, or after a grace
// (a quarter of the rebalance timeout, at most 5s) has its context
// cancelled and hands it back; then what was acked is committed
// synchronously, before the revoke completes. Lost partitions (commit
// false) have their messages' contexts cancelled at once and nothing
// committed.
func (m *member) revoke(ctx context.Context, ids []int32, commit bool) {
	m.mu.Lock()
	var parts []*part
	for _, id := range ids {
		if p := m.parts[id]; p != nil {
			p.revoke()
			parts = append(parts, p)
		}
	}
	m.mu.Unlock()
	if len(parts) == 0 {
		return
	}
	rt := m.s.t.cfg.RebalanceTimeout
	if !commit {
		// Lost: another member may own them already. Stop their handlers
		// now; what they ack no longer counts.
		for _, p := range parts {
			p.cancel()
		}
	} else if !m.waitReleased(parts, min(rt/4, 5*time.Second)) {
		for _, p := range parts {
			p.cancel()
		}
		m.waitReleased(parts, rt/4)
	}
	if commit {
		m.commitParts(ctx, parts, true)
	} else {
		m.retire(parts)
	}
	m.mu.Lock()
	for _, p := range parts {
		p.cancel()
		if m.parts[p.id] == p {
			delete(m.parts, p.id)
		}
		m.queued -= len(p.queue)
		p.queue = nil
	}
	m.signal()
	m.mu.Unlock()
}

// waitReleased waits up to d for no batch of parts to be in flight.
func (m *member) waitReleased(parts []*part, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, p := range parts {
		m.mu.Lock()
		busy, idle := p.inflight > 0, p.idle
		m.mu.Unlock()
		if !busy {
			continue
		}
		select {
		case <-idle:
		case <-timer.C:
			return false
		}
	}
	return true
}

// waitIdle waits up to d for the consumers to give back every batch.
func (m *member) waitIdle(d time.Duration) {
	m.mu.Lock()
	parts := make([]*part, 0, len(m.parts))
	for _, p := range m.parts {
		parts = append(parts, p)
	}
	m.mu.Unlock()
	m.waitReleased(parts, d)
}

// commitAll commits what was acked on every partition still assigned.
func (m *member) commitAll(ctx context.Context) {
	m.mu.Lock()
	parts := make([]*part, 0, len(m.parts))
	for _, p := range m.parts {
		if !p.revoked {
			parts = append(parts, p)
		}
	}
	m.mu.Unlock()
	m.commitParts(ctx, parts, false)
}

// retire ends the commits of parts, lost to another member: what is acked
// after this no longer counts.
func (m *member) retire(parts []*part) {
	m.commitMu.Lock()
	defer m.commitMu.Unlock()
	m.retireLocked(parts)
}

// retireLocked is retire with m.commitMu held.
func (m *member) retireLocked(parts []*part) {
	for _, p := range parts {
		p.track.retired = true
	}
}

// commitParts commits, synchronously, the offset of the first record not
// acked of each of parts that moved since its last commit, with the
// records acked beyond it in the metadata. last makes it the final commit
// of parts (they are being revoked): an ack that comes later, from a
// handler that outlived the revoke's grace, is never committed, so no
// commit of a periodic tick that took parts before the revoke can follow
// the revoke's.
func (m *member) commitParts(ctx context.Context, parts []*part, last bool) {
	m.commitMu.Lock()
	defer m.commitMu.Unlock()
	if last {
		defer m.retireLocked(parts)
	}
	type pending struct {
		p      *part
		offset int64
		meta   string
	}
	todo := map[int32]pending{}
	offsets := map[int32]kgo.EpochOffset{}
	for _, p := range parts {
		if p.track.retired {
			continue
		}
		if off, meta, ok := p.track.commit(); ok {
			todo[p.id] = pending{p, off, meta}
			offsets[p.id] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	if len(todo) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				rp := &req.Topics[i].Partitions[j]
				if pd, ok := todo[rp.Partition]; ok && req.Topics[i].Topic == m.topic && pd.meta != "" {
					meta := pd.meta
					rp.Metadata = &meta
				}
			}
		}
		return nil
	})
	var failed error
	m.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{m.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				failed = err
				clear(todo)
				return
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
						failed = err
						delete(todo, rp.Partition)
					}
				}
			}
		})
	for _, pd := range todo {
		pd.p.track.sentNext, pd.p.track.sentMeta = pd.offset, pd.meta
	}
	if failed != nil && !errors.Is(failed, context.Canceled) {
		m.log.Debug("kafka: offset commit failed; the next one retries", "err", m.s.t.redact(failed))
	}
}

// next waits for a partition with records to hand out and takes a batch of
// them (see take); nil when ctx ends or the member stops.
func (m *member) next(ctx context.Context) (*part, []*kgo.Record) {
	for {
		p, batch, wake := m.take(ctx)
		if p != nil || wake == nil {
			return p, batch
		}
		select {
		case <-wake:
		case <-ctx.Done():
		case <-m.stopCh:
		case <-m.s.closed:
		case <-m.s.t.closed:
		}
	}
}

// take takes a batch of a partition with records to hand out, without
// waiting: up to maxBatch, shared out among the consumers the window
// allows. With none to take it returns the channel that is closed when
// there may be, or nil when ctx ended or the member stops.
func (m *member) take(ctx context.Context) (*part, []*kgo.Record, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || ctx.Err() != nil || m.ending() {
		return nil, nil, nil
	}
	for len(m.ready) > 0 {
		p := m.ready[0]
		m.ready[0] = nil
		m.ready = m.ready[1:]
		p.inReady = false
		w := m.window()
		if p.revoked || len(p.queue) == 0 || p.handing >= w {
			continue
		}
		n := len(p.queue)
		if w > 1 {
			n = (n + w - 1) / w
		}
		n = min(n, maxBatch)
		batch := p.queue[:n:n]
		p.queue = p.queue[n:]
		m.queued -= n
		if p.inflight == 0 {
			p.idle = make(chan struct{})
		}
		p.inflight++
		p.handing++
		m.makeReady(p)
		if len(m.ready) > 0 {
			m.signal() // another consumer can take the rest
		}
		return p, batch, nil
	}
	return nil, nil, m.wake
}

// giveBack ends a batch of p whose first n records were handled (acked or
// nacked); the rest go back to the front of the partition's queue. A
// nacked record is handed out again after Config.NackDelay, before the
// records behind it.
func (m *member) giveBack(p *part, rest []*kgo.Record, nacked *kgo.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(rest) > 0 && !p.revoked {
		p.queue = append(rest[:len(rest):len(rest)], p.queue...)
		m.queued += len(rest)
	}
	p.handing--
	p.settled()
	if nacked != nil && !p.revoked {
		time.AfterFunc(m.s.t.cfg.NackDelay, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if p.revoked {
				return
			}
			p.queue = append([]*kgo.Record{nacked}, p.queue...)
			m.queued++
			m.makeReady(p)
			m.signal()
		})
	}
	m.makeReady(p)
	m.signal()
}

// work is one consumer: it takes batches until ctx ends or the member
// stops, and runs handle for each record in order. handle reports whether
// the message was acked and whether to go on.
func (m *member) work(ctx context.Context, handle func(ctx context.Context, msg *message.Message) (acked, goOn bool)) {
	for {
		p, batch := m.next(ctx)
		if p == nil {
			return
		}
		bctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(p.ctx, cancel)
		var nacked *kgo.Record
		i, goOn := 0, true
		for ; i < len(batch); i++ {
			if ctx.Err() != nil || m.ending() || m.isRevoked(p) {
				break // the rest go back to the partition
			}
			r := batch[i]
			var acked bool
			acked, goOn = handle(bctx, unmarshal(r))
			if acked {
				p.track.ack(r.Offset)
			} else if goOn {
				nacked = r
				i++
				break
			}
			if !goOn {
				if acked {
					i++
				}
				break
			}
		}
		stop()
		cancel()
		m.giveBack(p, batch[i:], nacked)
		if !goOn {
			return
		}
	}
}

func (m *member) isRevoked(p *part) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return p.revoked
}

// consume runs handle on the consumer's goroutine (transports.Consumer).
func (m *member) consume(ctx context.Context, handle func(*message.Message)) {
	m.work(ctx, func(mctx context.Context, msg *message.Message) (bool, bool) {
		return transports.Handle(mctx, msg, handle), true
	})
}

// forward hands each message out on out and waits for its Ack or Nack.
func (m *member) forward(ctx context.Context, out chan<- *message.Message) {
	m.work(ctx, func(mctx context.Context, msg *message.Message) (bool, bool) {
		msg.SetContext(mctx)
		select {
		case out <- msg:
		case <-ctx.Done():
			return false, false // never handed out: back to its partition
		case <-m.stopCh:
			return false, false
		case <-m.s.closed:
			return false, false
		case <-m.s.t.closed:
			return false, false
		}
		select {
		case <-msg.Acked():
			return true, true
		case <-msg.Nacked():
			return false, true
		case <-ctx.Done():
		case <-m.s.closed:
		case <-m.s.t.closed:
		}
		// The consumer is ending. The message may have been acked at the
		// same moment (select picks among ready cases at random): count
		// that ack, or its commit is lost and the message delivered again.
		select {
		case <-msg.Acked():
			return true, false
		default:
			return false, false
		}
	})
}

// unmarshal turns a Kafka record into a Watermill message as the Watermill
// adapter's DefaultMarshaler does (headers become metadata), with
// wire.PositionMetadataKey set to "partition/offset", and a UUID for
// records that plain Kafka clients produced without the Watermill header:
// the CloudEvents id when present, else topic/partition/offset.
func unmarshal(r *kgo.Record) *message.Message {
	md := make(message.Metadata, len(r.Headers)+1)
	// One string holds every header value: one allocation, not one each.
	size := 0
	for _, h := range r.Headers {
		size += len(h.Value)
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, h := range r.Headers {
		sb.Write(h.Value)
	}
	values := sb.String()
	var id string
	at := 0
	for _, h := range r.Headers {
		v := values[at : at+len(h.Value)]
		at += len(h.Value)
		if h.Key == uuidHeader {
			id = v
			continue
		}
		md[h.Key] = v
	}
	if id == "" {
		id = md.Get(wire.MetaID)
	}
	if id == "" {
		id = r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
	}
	md[wire.PositionMetadataKey] = position(r)
	msg := message.NewMessage(id, r.Value)
	msg.Metadata = md
	return msg
}

// position is a record's busline_position: partition/offset.
func position(r *kgo.Record) string {
	var b [24]byte
	p := strconv.AppendInt(b[:0], int64(r.Partition), 10)
	p = append(p, '/')
	return string(strconv.AppendInt(p, r.Offset, 10))
}
