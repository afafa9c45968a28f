package redis

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// flushTimeout bounds the final XACK of a closing subscription.
const flushTimeout = 5 * time.Second

// pump is one Redis consumer of one stream for one group. Its fetch loop
// reads batches of entries into a queue; every Subscribe call on the same
// subscriber and topic adds a worker that hands entries from the queue to
// its own channel, one at a time, so a batch is handled with the
// subscription's concurrency.
type pump struct {
	t        *Transport
	cfg      *Config
	ctx      context.Context // cancelled when the last worker leaves or on close
	cancel   context.CancelFunc
	topic    string
	stream   string
	group    string
	consumer string
	done     chan struct{} // closed when the fetch loop has flushed and stopped

	kick chan struct{} // wakes the fetch loop: queue drained or acks to flush

	mu       sync.Mutex
	queue    []goredis.XMessage // read, waiting for a worker
	wake     chan struct{}      // closed and replaced when queue grows
	acks     []string           // acked, not yet XACKed
	firstAck time.Time
	retries  []retry                                // nacked entries by due time
	nacks    map[string]*backoff.ExponentialBackOff // the redelivery delays of entries nacked in a row, by id
	held     map[string]struct{}
	workers  atomic.Int32 // changed under the subscriber's mutex

	// fetch loop only
	recovering   bool
	pelStart     string
	nextClaim    time.Time
	claimStart   string
	startup      bool      // reads no new entry while older ones may become ours (strict only)
	startupUntil time.Time // when startup ends regardless
}

type retry struct {
	entry goredis.XMessage
	due   time.Time
}

func newPump(t *Transport, topic, group, consumer string) *pump {
	ctx, cancel := context.WithCancel(context.Background())
	return &pump{
		t: t, cfg: &t.cfg, ctx: ctx, cancel: cancel,
		topic: topic, stream: t.Stream(topic), group: group, consumer: consumer,
		done: make(chan struct{}), kick: make(chan struct{}, 1), wake: make(chan struct{}),
		nacks: map[string]*backoff.ExponentialBackOff{}, held: map[string]struct{}{},
		recovering: true, pelStart: "0", claimStart: "0-0",
		startup: true, startupUntil: time.Now().Add(t.cfg.ConsumerTTL + t.cfg.ClaimInterval),
	}
}

// strict reports whether p hands out entries in stream order without
// exception: with a single worker (bus concurrency 1, which ordered
// subscriptions require), a nacked entry is redelivered before any later
// one, and a starting pump takes over a dead predecessor's entries before it
// reads new ones.
func (p *pump) strict() bool { return p.workers.Load() == 1 }

func (p *pump) signal() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run is the fetch loop.
func (p *pump) run() {
	defer close(p.done)
	p.t.startLiveness()
	mv := p.t.acquireMover(p.topic)
	defer p.t.releaseMover(mv)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.heartbeat()
	}()
	defer wg.Wait()
	defer p.finalFlush()

	// Read failures (Redis down, restarting) are retried after 100ms,
	// doubling to 2s, with jitter so that a Redis that comes back is not
	// hit by every consumer at once.
	readRetry := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 2 * time.Second}
	for p.ctx.Err() == nil {
		p.maybeFlush()
		p.promoteRetries()
		wait, queued := p.queued()
		if queued > p.refillAt() {
			p.pause(wait)
			continue
		}
		batch, err := p.fetch(queued > 0)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			if isNoGroup(err) {
				p.reset()
				p.t.groupLost(p.ctx, p.stream, p.group, err)
				continue
			}
			wait := readRetry.NextBackOff()
			p.cfg.Logger.Warn("redis transport: read failed; retrying", "stream", p.stream, "group", p.group, "consumer", p.consumer, "err", p.t.redact(err), "retry_in", wait)
			if !p.sleep(wait) {
				return
			}
			continue
		}
		readRetry.Reset()
		if len(batch) == 0 && queued > 0 {
			// Nothing new, and the workers are busy: wait for them.
			p.pause(wait)
			continue
		}
		p.push(batch)
	}
}

// refillAt is the queue length at or below which the fetch loop reads the
// next batch: half a batch, so that the workers find the next entries
// queued while the loop reads more, rather than wait for each read.
func (p *pump) refillAt() int { return p.cfg.BatchSize / 2 }

// pause waits for a worker's signal, for wait, or until the pump stops.
func (p *pump) pause(wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-p.kick:
	case <-timer.C:
	case <-p.ctx.Done():
	}
}

// queued returns how many entries wait for a worker, and how long the loop
// may wait before flushing acks or redelivering.
func (p *pump) queued() (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitLocked(), len(p.queue)
}

func (p *pump) waitLocked() time.Duration {
	wait := p.cfg.Block
	if len(p.retries) > 0 {
		wait = min(wait, time.Until(p.retries[0].due))
	}
	if len(p.acks) > 0 {
		wait = min(wait, p.cfg.AckInterval-time.Since(p.firstAck))
	}
	return max(wait, time.Millisecond)
}

// fetch returns the next entries: this consumer's own pending ones first,
// then entries claimed from stopped consumers, then new ones. With
// noBlock, the read of new entries returns at once when there are none.
func (p *pump) fetch(noBlock bool) ([]goredis.XMessage, error) {
	if p.recovering {
		res, err := p.t.client.XReadGroup(p.ctx, &goredis.XReadGroupArgs{
			Group: p.group, Consumer: p.consumer, Streams: []string{p.stream, p.pelStart},
			Count: int64(p.cfg.BatchSize), Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, err
		}
		var msgs []goredis.XMessage
		if len(res) > 0 {
			msgs = res[0].Messages
		}
		if len(msgs) == 0 {
			p.recovering = false
			return nil, nil
		}
		p.pelStart = msgs[len(msgs)-1].ID
		return msgs, nil
	}
	if now := time.Now(); !now.Before(p.nextClaim) {
		p.nextClaim = now.Add(p.cfg.ClaimInterval)
		msgs, older, err := p.claimDead(p.ctx)
		if err != nil {
			return nil, err
		}
		idle, next, err := p.t.client.XAutoClaim(p.ctx, &goredis.XAutoClaimArgs{
			Stream: p.stream, Group: p.group, Consumer: p.consumer,
			MinIdle: p.cfg.ClaimIdle, Start: p.claimStart, Count: int64(p.cfg.BatchSize),
		}).Result()
		if err != nil {
			return nil, err
		}
		p.claimStart = next
		if next != "0-0" {
			p.nextClaim = now // more to claim: look again next round
		}
		if len(idle) > 0 {
			p.cfg.Logger.Info("redis transport: claimed idle pending entries of another consumer", "stream", p.stream, "group", p.group, "consumer", p.consumer, "count", len(idle))
			msgs = append(msgs, idle...)
			slices.SortFunc(msgs, func(a, b goredis.XMessage) int { return compareIDs(a.ID, b.ID) })
			older = true // there may be more: finish them before new entries
		}
		if p.startup && (!older || !now.Before(p.startupUntil) || !p.strict()) {
			p.startup = false
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
	}
	if p.startup {
		// A strict pump reads nothing new while a predecessor, maybe
		// dead with a liveness key not stale yet, holds pending entries:
		// they are older than anything new.
		p.mu.Lock()
		wait := p.waitLocked() // acks to flush, nacked entries due
		p.mu.Unlock()
		p.pause(max(min(time.Until(p.nextClaim), time.Until(p.startupUntil), wait), time.Millisecond))
		return nil, nil
	}
	block := time.Duration(-1) // go-redis: no BLOCK argument
	if !noBlock {
		p.mu.Lock()
		block = p.waitLocked()
		p.mu.Unlock()
	}
	res, err := p.t.client.XReadGroup(p.ctx, &goredis.XReadGroupArgs{
		Group: p.group, Consumer: p.consumer, Streams: []string{p.stream, ">"},
		Count: int64(p.cfg.BatchSize), Block: block,
	}).Result()
	if errors.Is(err, goredis.Nil) || (err == nil && len(res) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return res[0].Messages, nil
}

func (p *pump) push(batch []goredis.XMessage) {
	if len(batch) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range batch {
		p.held[m.ID] = struct{}{}
	}
	p.queue = append(p.queue, batch...)
	close(p.wake)
	p.wake = make(chan struct{})
}

// promoteRetries moves nacked entries that are due to the head of the queue.
func (p *pump) promoteRetries() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	n := 0
	for n < len(p.retries) && !p.retries[n].due.After(now) {
		n++
	}
	if n == 0 {
		return
	}
	due := make([]goredis.XMessage, n)
	for i := range n {
		due[i] = p.retries[i].entry
	}
	p.retries = p.retries[n:]
	p.queue = append(due, p.queue...)
	close(p.wake)
	p.wake = make(chan struct{})
}

// next waits for an entry until ctx is done; ok is false then.
func (p *pump) next(ctx context.Context) (e goredis.XMessage, ok bool) {
	for {
		p.mu.Lock()
		// A strict pump hands out nothing while a nacked entry waits for
		// its redelivery: nothing overtakes it.
		if len(p.queue) > 0 && (len(p.retries) == 0 || !p.strict()) {
			e = p.queue[0]
			p.queue[0] = goredis.XMessage{}
			p.queue = p.queue[1:]
			refill := len(p.queue) == p.refillAt() || len(p.queue) == 0
			p.mu.Unlock()
			if refill {
				p.signal()
			}
			return e, true
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return e, false
		}
	}
}

// requeue puts back an entry a worker took but could not deliver.
func (p *pump) requeue(e goredis.XMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append([]goredis.XMessage{e}, p.queue...)
	close(p.wake)
	p.wake = make(chan struct{})
}

// work hands entries to out until ctx is done.
func (p *pump) work(ctx context.Context, out chan<- *message.Message) {
	for {
		e, ok := p.next(ctx)
		if !ok {
			return
		}
		if !p.deliver(ctx, e, out) {
			p.requeue(e)
			return
		}
	}
}

// consume calls handle with each entry until ctx is done.
func (p *pump) consume(ctx context.Context, handle func(*message.Message)) {
	for {
		e, ok := p.next(ctx)
		if !ok {
			return
		}
		if ctx.Err() != nil {
			p.requeue(e) // taken as the subscription ended
			return
		}
		msg := p.open(e)
		if msg == nil {
			continue
		}
		if transports.Handle(ctx, msg, handle) {
			p.ack(e.ID)
		} else {
			p.nack(e)
		}
	}
}

// consumeConcurrent calls handle with each entry until ctx is done, with up
// to limit of them unsettled, and returns once every one handed out was
// settled, or, when the pump stops first (the subscriber or transport
// closes), left pending for release to hand back.
func (p *pump) consumeConcurrent(ctx context.Context, limit int, handle func(*message.Message)) {
	var unsettled sync.WaitGroup
	defer unsettled.Wait()
	slots := make(chan struct{}, limit)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		e, ok := p.next(ctx)
		if !ok {
			return
		}
		if ctx.Err() != nil {
			p.requeue(e) // taken as the subscription ended
			return
		}
		msg := p.open(e)
		if msg == nil {
			<-slots
			continue
		}
		msg.SetContext(ctx)
		unsettled.Go(func() {
			defer func() { <-slots }()
			select {
			case <-msg.Acked():
				p.ack(e.ID)
			case <-msg.Nacked():
				p.nack(e)
			case <-p.ctx.Done():
				select {
				case <-msg.Acked():
					p.ack(e.ID)
				default: // left pending: release hands it back
				}
			}
		})
		handle(msg)
	}
}

// deliver hands e to the consumer and waits for the outcome. It returns
// false when ctx ended first; e was then neither acked nor nacked.
func (p *pump) deliver(ctx context.Context, e goredis.XMessage, out chan<- *message.Message) bool {
	msg := p.open(e)
	if msg == nil {
		return true
	}
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(msgCtx)
	select {
	case out <- msg:
	case <-ctx.Done():
		return false
	}
	select {
	case <-msg.Acked():
		p.ack(e.ID)
	case <-msg.Nacked():
		p.nack(e)
	case <-ctx.Done():
		select {
		case <-msg.Acked():
			p.ack(e.ID)
		default:
			// Left pending: the next subscription under this consumer
			// name, or a claim, delivers it again.
		}
	}
	return true
}

// open decodes e into a message. An entry that cannot be handed out (one
// deleted while pending, or malformed) is settled here, and open returns
// nil.
func (p *pump) open(e goredis.XMessage) *message.Message {
	if e.Values == nil {
		// XREADGROUP returns entries deleted while pending without fields.
		p.cfg.Logger.Warn("redis transport: pending entry was trimmed or deleted before it was handled; it is lost for the group (raise max_len or min_id_age)", "stream", p.stream, "group", p.group, "id", e.ID)
		p.ack(e.ID)
		return nil
	}
	msg, err := decode(e)
	if err != nil {
		p.poison(e, err)
		return nil
	}
	return msg
}

// poison moves an unreadable entry to the group's poison lane and acks it;
// if the lane write fails the entry is retried like a nacked one.
func (p *pump) poison(e goredis.XMessage, cause error) {
	laneTopic := wire.PoisonTopic(p.topic, p.group)
	lane := p.t.Stream(laneTopic)
	vals := poisonValues(e, p.topic, p.group, cause, time.Now().UTC())
	if err := p.t.client.Process(p.ctx, p.t.xadd(p.ctx, laneTopic, vals)); err != nil {
		p.cfg.Logger.Error("redis transport: cannot move malformed entry to the poison lane; will retry", "stream", p.stream, "group", p.group, "id", e.ID, "lane", lane, "err", p.t.redact(err))
		p.nack(e)
		return
	}
	p.cfg.Logger.Warn("redis transport: malformed entry moved to the poison lane", "stream", p.stream, "group", p.group, "id", e.ID, "lane", lane, "reason", cause)
	p.ack(e.ID)
}

func (p *pump) ack(id string) {
	p.mu.Lock()
	delete(p.nacks, id)
	if len(p.acks) == 0 {
		p.firstAck = time.Now()
	}
	p.acks = append(p.acks, id)
	full := len(p.acks) >= p.cfg.BatchSize
	p.mu.Unlock()
	if full {
		p.signal()
	}
}

// nack schedules e for redelivery after NackDelay, doubled per consecutive
// nack of e up to NackDelayMax, without jitter.
func (p *pump) nack(e goredis.XMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.nacks[e.ID]
	if b == nil {
		b = &backoff.ExponentialBackOff{InitialInterval: p.cfg.NackDelay, Multiplier: 2, MaxInterval: p.cfg.NackDelayMax}
		p.nacks[e.ID] = b
	}
	rt := retry{entry: e, due: time.Now().Add(b.NextBackOff())}
	i, _ := slices.BinarySearchFunc(p.retries, rt.due, func(x retry, due time.Time) int { return x.due.Compare(due) })
	p.retries = slices.Insert(p.retries, i, rt)
	p.signal()
}

func (p *pump) maybeFlush() {
	p.mu.Lock()
	due := len(p.acks) > 0 && (time.Since(p.firstAck) >= p.cfg.AckInterval || len(p.acks) >= p.cfg.BatchSize)
	p.mu.Unlock()
	if due {
		p.flush(p.ctx)
	}
}

// flush acknowledges the acked entries with one XACK. On a connection error
// they are kept for the next flush.
func (p *pump) flush(ctx context.Context) {
	p.mu.Lock()
	ids := p.acks
	p.acks = nil
	p.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	err := p.t.client.XAck(ctx, p.stream, p.group, ids...).Err()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && !isNoGroup(err) {
		if ctx.Err() == nil {
			p.cfg.Logger.Warn("redis transport: XACK failed; will retry", "stream", p.stream, "group", p.group, "count", len(ids), "err", p.t.redact(err))
		}
		if len(p.acks) == 0 {
			p.firstAck = time.Now()
		}
		p.acks = append(ids, p.acks...)
		return
	}
	for _, id := range ids {
		delete(p.held, id)
	}
}

func (p *pump) finalFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	p.flush(ctx)
	p.mu.Lock()
	left := len(p.acks)
	p.mu.Unlock()
	if left > 0 {
		p.cfg.Logger.Warn("redis transport: could not acknowledge handled entries before closing; they will be delivered again", "stream", p.stream, "group", p.group, "count", left)
	}
	p.release(ctx)
}

// release hands back the entries this consumer read and did not acknowledge
// (read ahead and never delivered, or delivered and not finished): it marks
// them idle for ClaimIdle, so the next consumer of the group to look claims
// them at once rather than after ClaimIdle. Redis cannot un-read an entry;
// XCLAIM with IDLE is how it is given back.
func (p *pump) release(ctx context.Context) {
	p.mu.Lock()
	acked := make(map[string]bool, len(p.acks))
	for _, id := range p.acks {
		acked[id] = true
	}
	ids := make([]string, 0, len(p.held))
	for id := range p.held {
		if !acked[id] {
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	idle := p.cfg.ClaimIdle.Milliseconds() + 1
	for chunk := range slices.Chunk(ids, 1000) {
		args := []any{"XCLAIM", p.stream, p.group, p.consumer, 0}
		for _, id := range chunk {
			args = append(args, id)
		}
		args = append(args, "IDLE", idle, "JUSTID")
		if err := p.t.client.Do(ctx, args...).Err(); err != nil && !isNoGroup(err) {
			p.cfg.Logger.Warn("redis transport: could not hand back unacknowledged entries; other consumers claim them after claim_idle", "stream", p.stream, "group", p.group, "count", len(chunk), "err", p.t.redact(err))
		}
	}
}

// reset forgets everything read before the group was lost.
func (p *pump) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acks = nil
	p.retries = nil
	p.queue = nil
	clear(p.nacks)
	clear(p.held)
	p.recovering = false
	p.claimStart = "0-0"
}

// heartbeat refreshes the idle time of the entries this consumer holds every
// ClaimIdle/4, so that live consumers do not claim them.
func (p *pump) heartbeat() {
	every := p.cfg.ClaimIdle / 4
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		ids := make([]string, 0, len(p.held))
		for id := range p.held {
			ids = append(ids, id)
		}
		p.mu.Unlock()
		for chunk := range slices.Chunk(ids, 1000) {
			err := p.t.client.XClaimJustID(p.ctx, &goredis.XClaimArgs{
				Stream: p.stream, Group: p.group, Consumer: p.consumer, MinIdle: every, Messages: chunk,
			}).Err()
			if err != nil && p.ctx.Err() == nil {
				p.cfg.Logger.Warn("redis transport: refreshing held entries failed", "stream", p.stream, "group", p.group, "err", p.t.redact(err))
			}
		}
	}
}

// sleep waits d or until the pump stops; false then.
func (p *pump) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}
