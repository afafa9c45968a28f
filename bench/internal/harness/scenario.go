package harness

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// measurement is the outcome of one scenario run on one way.
type measurement struct {
	rate     float64 // msg/s
	n        int64   // messages counted
	capped   bool    // MaxDuration cut the measurement short
	p50, p99 time.Duration
	allocs   float64 // heap allocations per message (e2e, whole process)
	bytes    float64 // heap bytes per message (e2e, whole process)
	// violations counts the messages handled out of their key's order;
	// ordered says the consumer checked it (keyed scenarios).
	violations int64
	ordered    bool
	err        error
}

// load is the publishing of a measurement: how many messages, from how
// many goroutines, how many per call (0 or 1: one per send).
type load struct {
	total      int64
	publishers int
	batch      int
	keyed      bool // the senders publish with ordering keys
}

// measure runs scenario on w with a fresh topic.
func (r *runner) measure(ctx context.Context, w way, scenario string, s spec) (m measurement) {
	t, err := w.prepare(ctx, s)
	if err != nil {
		return measurement{err: fmt.Errorf("prepare: %w", err)}
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := t.close(cctx); err != nil && m.err == nil {
			m.err = fmt.Errorf("close: %w", err)
		}
	}()
	c := r.cfg
	switch scenario {
	case ScenarioPublish1:
		return r.publishOnly(ctx, t, load{total: int64(c.PublishMessages), publishers: 1})
	case ScenarioPublishN:
		return r.publishOnly(ctx, t, load{total: int64(c.PublishMessages), publishers: c.Publishers})
	case ScenarioPublishBatch:
		return r.publishOnly(ctx, t, load{total: int64(c.PublishMessages), publishers: c.BatchPublishers, batch: c.BatchSize})
	case ScenarioE2E:
		return r.endToEnd(ctx, t, load{total: int64(c.E2EMessages), publishers: c.Publishers}, 0)
	case ScenarioE2EBatch:
		return r.endToEnd(ctx, t, load{total: int64(c.E2EMessages), publishers: c.BatchPublishers, batch: c.BatchSize}, 0)
	case ScenarioE2EKeyed, ScenarioE2EKeyed1:
		return r.endToEnd(ctx, t, load{total: int64(c.KeyedMessages), publishers: c.Publishers, keyed: true}, c.KeyedWork)
	case ScenarioDrain:
		return r.drain(ctx, t)
	case ScenarioLatency:
		return r.latency(ctx, t)
	}
	return measurement{err: fmt.Errorf("unknown scenario %q", scenario)}
}

func (r *runner) publishOnly(ctx context.Context, t topic, l load) measurement {
	start := time.Now()
	sent, err := r.publish(ctx, t, l, start.Add(r.cfg.MaxDuration))
	elapsed := time.Since(start)
	if err != nil {
		return measurement{err: err}
	}
	return measurement{rate: float64(sent) / elapsed.Seconds(), n: sent, capped: sent < l.total}
}

// publish sends up to l.total messages from l.publishers goroutines, each
// with its own sender, stopping at deadline; it returns once every message
// sent is confirmed, with how many were. With l.batch above 1, a sender
// that is a batchSender gets l.batch messages per call; another sends them
// one by one, pipelined as it always does.
func (r *runner) publish(ctx context.Context, t topic, l load, deadline time.Time) (int64, error) {
	senders := make([]sender, l.publishers)
	for i := range senders {
		s, err := t.newSender(ctx)
		if err != nil {
			closeSenders(senders)
			return 0, fmt.Errorf("sender: %w", err)
		}
		senders[i] = s
	}
	defer closeSenders(senders)
	var (
		next, sent atomic.Int64
		wg         sync.WaitGroup
		errMu      sync.Mutex
		firstErr   error
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	batch := int64(max(l.batch, 1))
	for _, s := range senders {
		wg.Go(func() {
			bs, _ := s.(batchSender)
			sentAts := make([]int64, 0, batch)
			n := int64(0)
			for {
				// Claim the next batch of the total, the last one short.
				hi := next.Add(batch)
				lo := hi - batch
				if lo >= l.total {
					break
				}
				size := min(hi, l.total) - lo
				now := time.Now()
				if now.After(deadline) {
					break
				}
				sentAts = sentAts[:0]
				for range size {
					sentAts = append(sentAts, now.UnixNano())
				}
				if err := sendAll(ctx, s, bs, sentAts); err != nil {
					fail(fmt.Errorf("send: %w", err))
					return
				}
				n += size
			}
			if err := s.flush(ctx); err != nil {
				fail(fmt.Errorf("flush: %w", err))
				return
			}
			sent.Add(n)
		})
	}
	wg.Wait()
	return sent.Load(), firstErr
}

// sendAll sends sentAts with one call of bs when there is one and more
// than one message, else one by one.
func sendAll(ctx context.Context, s sender, bs batchSender, sentAts []int64) error {
	if bs != nil && len(sentAts) > 1 {
		return bs.sendBatch(ctx, sentAts)
	}
	for _, sentAt := range sentAts {
		if err := s.send(ctx, sentAt); err != nil {
			return err
		}
	}
	return nil
}

func closeSenders(senders []sender) {
	for _, s := range senders {
		if s != nil {
			_ = s.close()
		}
	}
}

// startConsumer starts consuming into k and, with warm, sends one warm-up
// message and waits until the consumer handled it, so that subscription
// and group-join time stay out of the measurement.
func (r *runner) startConsumer(ctx context.Context, t topic, k *sink, warm bool) (func() error, error) {
	stop, err := t.consume(ctx, k.handle)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	if !warm {
		return stop, nil
	}
	s, err := t.newSender(ctx)
	if err == nil {
		err = s.send(ctx, warmup)
		err = errors.Join(err, s.flush(ctx), s.close())
	}
	if err != nil {
		_ = stop()
		return nil, fmt.Errorf("warm-up publish: %w", err)
	}
	timer := time.NewTimer(r.cfg.MaxDuration + 10*time.Second)
	defer timer.Stop()
	select {
	case <-k.warm:
		return stop, nil
	case <-timer.C:
		_ = stop()
		return nil, fmt.Errorf("the consumer did not receive the warm-up message within %v", r.cfg.MaxDuration+10*time.Second)
	case <-ctx.Done():
		_ = stop()
		return nil, ctx.Err()
	}
}

// endToEnd publishes l while one consumer, warmed up first, handles, each
// handling taking work; it is timed from the first publish to the last
// handled message.
func (r *runner) endToEnd(ctx context.Context, t topic, l load, work time.Duration) (m measurement) {
	k := newSink(false)
	k.work = work
	stop, err := r.startConsumer(ctx, t, k, true)
	if err != nil {
		return measurement{err: err}
	}
	defer func() {
		if err := stop(); err != nil && m.err == nil {
			m.err = fmt.Errorf("stop consumer: %w", err)
		}
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	sent, err := r.publish(ctx, t, l, start.Add(r.cfg.MaxDuration))
	if err != nil {
		return measurement{err: err}
	}
	all := k.waitFor(sent, start.Add(2*r.cfg.MaxDuration))
	runtime.ReadMemStats(&after)
	n := k.count.Load()
	if n == 0 {
		return measurement{err: fmt.Errorf("no message of %d handled within %v", sent, 2*r.cfg.MaxDuration)}
	}
	elapsed := time.Unix(0, k.last.Load()).Sub(start)
	m = measurement{
		rate:   float64(n) / elapsed.Seconds(),
		n:      n,
		capped: sent < l.total || !all,
		allocs: float64(after.Mallocs-before.Mallocs) / float64(n),
		bytes:  float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
	}
	if oc, ok := t.(orderChecker); ok && l.keyed {
		m.violations, m.ordered = oc.violations(), true
	}
	return m
}

func (r *runner) drain(ctx context.Context, t topic) (m measurement) {
	total := int64(r.cfg.Backlog)
	sent, err := r.publish(ctx, t, load{total: total, publishers: r.cfg.Publishers}, time.Now().Add(r.cfg.MaxDuration))
	if err != nil {
		return measurement{err: fmt.Errorf("backlog: %w", err)}
	}
	k := newSink(false)
	stop, err := r.startConsumer(ctx, t, k, false)
	if err != nil {
		return measurement{err: err}
	}
	defer func() {
		if err := stop(); err != nil && m.err == nil {
			m.err = fmt.Errorf("stop consumer: %w", err)
		}
	}()
	all := k.waitFor(sent, time.Now().Add(r.cfg.MaxDuration+10*time.Second))
	n := k.count.Load()
	if n < 2 {
		return measurement{err: fmt.Errorf("%d of a backlog of %d handled within %v", n, sent, r.cfg.MaxDuration+10*time.Second)}
	}
	elapsed := time.Unix(0, k.last.Load()).Sub(time.Unix(0, k.first.Load()))
	return measurement{rate: float64(n-1) / elapsed.Seconds(), n: n, capped: sent < total || !all}
}

// latencyWorkers is how many goroutines share the latency scenario's paced
// publishing, so that a publish slower than the interval does not lower the
// rate.
const latencyWorkers = 8

func (r *runner) latency(ctx context.Context, t topic) (m measurement) {
	k := newSink(true)
	stop, err := r.startConsumer(ctx, t, k, true)
	if err != nil {
		return measurement{err: err}
	}
	defer func() {
		if err := stop(); err != nil && m.err == nil {
			m.err = fmt.Errorf("stop consumer: %w", err)
		}
	}()
	total := int64(float64(r.cfg.LatencyRate) * r.cfg.LatencyDuration.Seconds())
	interval := time.Second / time.Duration(r.cfg.LatencyRate)
	jobs := make(chan struct{}, total)
	var (
		wg    sync.WaitGroup
		sent  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for range latencyWorkers {
		s, err := t.newSender(ctx)
		if err != nil {
			close(jobs)
			wg.Wait()
			return measurement{err: fmt.Errorf("sender: %w", err)}
		}
		wg.Go(func() {
			defer func() { _ = s.close() }()
			for range jobs {
				err := s.send(ctx, time.Now().UnixNano())
				if err == nil {
					err = s.flush(ctx)
				}
				if err != nil {
					errMu.Lock()
					first = cmpOr(first, err)
					errMu.Unlock()
					continue
				}
				sent.Add(1)
			}
		})
	}
	start := time.Now()
	deadline := start.Add(r.cfg.MaxDuration)
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if due.After(deadline) {
			break
		}
		time.Sleep(time.Until(due)) // pacing, not waiting for a result
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		return measurement{err: first}
	}
	all := k.waitFor(sent.Load(), time.Now().Add(r.cfg.MaxDuration))
	lat := k.latencies()
	if len(lat) == 0 {
		return measurement{err: fmt.Errorf("no message of %d handled", sent.Load())}
	}
	slices.Sort(lat)
	return measurement{
		n:      int64(len(lat)),
		capped: sent.Load() < total || !all,
		p50:    percentile(lat, 0.50),
		p99:    percentile(lat, 0.99),
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// percentile returns the p-th percentile of sorted, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
