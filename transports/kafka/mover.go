package kafka

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MoverGroup returns the Kafka consumer group whose members move the due
// records of destination's wait topics to destination: one group per
// destination, shared by every process subscribed to it, and never part of
// the rebalances of the groups consuming destination.
func MoverGroup(destination string) string { return destination + ".delay" }

const (
	// moverFetchWait bounds a mover's fetch long-poll: a partition resumed
	// at its due time is fetched again once the fetch in flight returns.
	moverFetchWait = 200 * time.Millisecond
	// moverMetadataAge is how often a mover looks for new wait topics
	// created by other processes.
	moverMetadataAge = 5 * time.Second
	// moveRetry is the pause after a failed move before the records are
	// read again.
	moveRetry = time.Second
)

// mover consumes the wait topics of one destination topic as MoverGroup and
// moves each record on once it has been held its level: a partition whose
// head is not due is paused and rewound to the head, and resumed at the
// head's due time, so nothing is held in memory or in a handler while it
// waits. Records are produced to their next topic, and their offsets
// committed only once the brokers acknowledged them: a crash in between
// moves a record twice, never loses it.
type mover struct {
	t    *Transport
	dest string
	refs int // guarded by t.mu
	cl   *kgo.Client
	log  *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	waits map[topicPartition]*time.Timer // paused partitions, until their head is due
	seen  map[topicPartition]headSeen    // when each partition's head was first read
}

type topicPartition struct {
	topic     string
	partition int32
}

type headSeen struct {
	offset int64
	at     time.Time
}

// acquireMover returns the mover of destination, registering it on first
// use; releaseMover stops it after its last user. A mover's client starts
// only once destination has a wait topic (see discoverWaitTopics), so a
// destination nothing is delayed to costs no consumer.
func (t *Transport) acquireMover(destination string) (*mover, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	if mv := t.movers[destination]; mv != nil {
		mv.refs++
		return mv, nil
	}
	mv := &mover{
		t: t, dest: destination, refs: 1,
		waits: map[topicPartition]*time.Timer{}, seen: map[topicPartition]headSeen{},
		done: make(chan struct{}),
		log:  t.logger.With("kafka_group", MoverGroup(destination), "destination", destination),
	}
	t.movers[destination] = mv
	t.lookForWaitTopics()
	return mv, nil
}

// lookForWaitTopics wakes the discovery loop.
func (t *Transport) lookForWaitTopics() {
	select {
	case t.discover <- struct{}{}:
	default:
	}
}

// discoverWaitTopics starts the movers whose destinations have wait topics:
// at once when asked, and every moverMetadataAge, for wait topics other
// processes created; it lists the cluster's topics only while a registered
// mover is not started. It ends when the transport closes.
func (t *Transport) discoverWaitTopics() {
	defer close(t.discovered)
	tick := time.NewTicker(moverMetadataAge)
	defer tick.Stop()
	for {
		select {
		case <-t.closed:
			return
		case <-t.discover:
		case <-tick.C:
		}
		t.mu.Lock()
		idle := 0
		for _, mv := range t.movers {
			if mv.cl == nil {
				idle++
			}
		}
		t.mu.Unlock()
		if idle == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		req := kmsg.NewPtrMetadataRequest() // nil Topics: every topic
		resp, err := req.RequestWith(ctx, t.cl)
		cancel()
		if err != nil {
			if !t.isClosed() {
				t.logger.Debug("kafka: listing topics for wait topics failed; retrying", "err", t.redact(err))
			}
			continue
		}
		for _, rt := range resp.Topics {
			if rt.Topic == nil {
				continue
			}
			if dest, _, ok := parseWaitTopic(*rt.Topic); ok {
				t.startMover(dest)
			}
		}
	}
}

// startMover starts the client of destination's registered mover, if any
// and not started yet.
func (t *Transport) startMover(destination string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	mv := t.movers[destination]
	if mv == nil || mv.cl != nil || t.isClosed() {
		return
	}
	pattern := "^" + regexp.QuoteMeta(destination+waitInfix) + "[0-9]+$"
	cl, err := kgo.NewClient(append(t.opts(),
		kgo.ConsumerGroup(MoverGroup(destination)),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(pattern),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(t.cfg.SessionTimeout),
		kgo.HeartbeatInterval(t.cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(t.cfg.RebalanceTimeout),
		kgo.FetchMaxWait(moverFetchWait),
		kgo.MetadataMaxAge(moverMetadataAge),
		kgo.OnPartitionsRevoked(mv.forget),
		kgo.OnPartitionsLost(mv.forget),
	)...)
	if err != nil {
		mv.log.Error("kafka: cannot start the mover", "err", t.redact(err))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	mv.cl, mv.cancel = cl, cancel
	go mv.run(ctx)
}

func (t *Transport) releaseMover(mv *mover) {
	t.mu.Lock()
	mv.refs--
	last := mv.refs == 0 && t.movers[mv.dest] == mv
	if last {
		delete(t.movers, mv.dest)
	}
	t.mu.Unlock()
	if last {
		mv.stop()
	}
}

// stop ends the mover and leaves its group. t.mu is not held.
func (mv *mover) stop() {
	mv.t.mu.Lock()
	cl, cancel := mv.cl, mv.cancel
	mv.t.mu.Unlock()
	if cl == nil {
		return // never started
	}
	cancel()
	<-mv.done
	mv.mu.Lock()
	for tp, timer := range mv.waits {
		timer.Stop()
		delete(mv.waits, tp)
	}
	mv.mu.Unlock()
	cl.Close()
}

// forget drops the waits of partitions the group took away, resuming them
// so that they are fetched if they come back.
func (mv *mover) forget(_ context.Context, cl *kgo.Client, gone map[string][]int32) {
	mv.mu.Lock()
	for topic, ps := range gone {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if timer := mv.waits[tp]; timer != nil {
				timer.Stop()
				delete(mv.waits, tp)
			}
			delete(mv.seen, tp)
		}
	}
	mv.mu.Unlock()
	cl.ResumeFetchPartitions(gone)
}

// pauseUntil pauses tp and rewinds it to offset, to be fetched again at
// due. Called from the polling goroutine before AllowRebalance, so no
// rebalance callback runs meanwhile. The partition is paused before its
// timer exists, so an immediate due time cannot resume it first.
func (mv *mover) pauseUntil(tp topicPartition, offset int64, due time.Time) {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	if old := mv.waits[tp]; old != nil {
		old.Stop()
	}
	mv.cl.PauseFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
	mv.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tp.topic: {tp.partition: {Epoch: -1, Offset: offset}}})
	var timer *time.Timer
	timer = time.AfterFunc(time.Until(due), func() {
		mv.mu.Lock()
		if mv.waits[tp] != timer {
			mv.mu.Unlock()
			return // replaced by a later wait, or forgotten
		}
		delete(mv.waits, tp)
		mv.mu.Unlock()
		mv.cl.ResumeFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
	})
	mv.waits[tp] = timer
}

func (mv *mover) waiting(tp topicPartition) bool {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	return mv.waits[tp] != nil
}

// holdEnd is when r, in a wait topic of level l, has been held its level:
// l after it was stored, or, should its timestamp be ahead of this clock,
// l after this mover first read it.
func (mv *mover) holdEnd(tp topicPartition, r *kgo.Record, l time.Duration, now time.Time) time.Time {
	end := r.Timestamp.Add(l + time.Millisecond) // timestamps are in whole milliseconds
	mv.mu.Lock()
	defer mv.mu.Unlock()
	s, ok := mv.seen[tp]
	if !ok || s.offset != r.Offset {
		s = headSeen{offset: r.Offset, at: now}
		mv.seen[tp] = s
	}
	if capped := s.at.Add(l); capped.Before(end) {
		end = capped
	}
	return end
}

func (mv *mover) run(ctx context.Context) {
	defer close(mv.done)
	for ctx.Err() == nil {
		fetches := mv.cl.PollRecords(ctx, 1000)
		if fetches.IsClientClosed() {
			mv.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				mv.log.Warn("kafka: mover fetch error", "topic", topic, "partition", p, "err", mv.t.redact(err))
			}
		})
		mv.moveDue(ctx, fetches)
		mv.cl.AllowRebalance()
	}
}

// moveDue moves the due records of fetches and pauses every partition at
// its first record that is not due.
func (mv *mover) moveDue(ctx context.Context, fetches kgo.Fetches) {
	now := time.Now()
	type move struct {
		tp    topicPartition
		first int64 // offset of the first record to move
		last  int64
		out   []*kgo.Record
	}
	// A poll can hold several fetches of one partition: one move each.
	var moves []*move
	byPartition := map[topicPartition]*move{}
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		tp := topicPartition{fp.Topic, fp.Partition}
		if len(fp.Records) == 0 || mv.waiting(tp) {
			return // read before the partition was paused: read again at its due time
		}
		_, l, ok := parseWaitTopic(fp.Topic)
		if !ok {
			return
		}
		for _, r := range fp.Records {
			end := mv.holdEnd(tp, r, l, now)
			if end.After(now) {
				mv.pauseUntil(tp, r.Offset, end)
				break
			}
			mo := byPartition[tp]
			if mo == nil {
				mo = &move{tp: tp, first: r.Offset}
				byPartition[tp] = mo
				moves = append(moves, mo)
			}
			mo.last = r.Offset
			mo.out = append(mo.out, mv.next(r, now.Sub(end)))
		}
	})
	if len(moves) == 0 {
		return
	}
	var out []*kgo.Record
	for _, mo := range moves {
		out = append(out, mo.out...)
	}
	err := mv.ensureTopics(ctx, out)
	if err == nil {
		// Every outcome is awaited, also once ctx ends: a record moved
		// is then committed, not moved again by the next mover.
		err = mv.t.produceRecordsUntil(ctx, context.WithoutCancel(ctx), out...)
	}
	if err != nil {
		if ctx.Err() == nil {
			mv.log.Warn("kafka: cannot move due records; retrying", "records", len(out), "err", err)
		}
		for _, mo := range moves {
			mv.pauseUntil(mo.tp, mo.first, time.Now().Add(moveRetry))
		}
		return
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, mo := range moves {
		if offsets[mo.tp.topic] == nil {
			offsets[mo.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[mo.tp.topic][mo.tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: mo.last + 1}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	mv.cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					err = errors.Join(err, kerr.ErrorForCode(p.ErrorCode))
				}
			}
		}
		if err != nil {
			// Moved, not committed: a later owner of the partition moves
			// these records again (a duplicate, never a loss).
			mv.log.Warn("kafka: mover commit failed", "err", mv.t.redact(err))
		}
	})
}

// next is the record that r becomes once held its level: for its
// destination when its wait is over, else for the wait topic of the level
// of what is left. late is how long after the end of its hold r is read;
// it is taken off the rest of the wait.
func (mv *mover) next(r *kgo.Record, late time.Duration) *kgo.Record {
	var left time.Duration
	headers := make([]kgo.RecordHeader, 0, len(r.Headers))
	for _, h := range r.Headers {
		if h.Key == leftHeader {
			ms, _ := strconv.ParseInt(string(h.Value), 10, 64)
			left = time.Duration(ms) * time.Millisecond
			continue
		}
		headers = append(headers, h)
	}
	now := time.Now()
	out := &kgo.Record{Key: r.Key, Value: r.Value, Headers: headers, Timestamp: now}
	left -= late
	if left <= 0 {
		out.Topic = mv.dest
		return out
	}
	l := level(left)
	out.Topic = waitTopic(mv.dest, l)
	out.Headers = append(out.Headers, kgo.RecordHeader{Key: leftHeader, Value: []byte(formatLeft(max(0, left-l)))})
	return out
}

// ensureTopics creates the wait topics out goes to, and has the mover look
// for them at once.
func (mv *mover) ensureTopics(ctx context.Context, out []*kgo.Record) error {
	added := false
	for _, r := range out {
		if r.Topic == mv.dest || mv.t.knownTopic(r.Topic) {
			continue
		}
		if err := mv.t.ensureTopic(ctx, r.Topic); err != nil {
			return err
		}
		added = true
	}
	if added {
		mv.cl.ForceMetadataRefresh()
	}
	return nil
}
