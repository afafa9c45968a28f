package harness

import (
	"sync"
	"sync/atomic"
	"time"
)

// sink counts the messages a consumer handles, remembers when the first and
// the last arrived, and optionally their publish-to-handle latencies.
type sink struct {
	// work is how long each handling waits before it counts, a stand-in
	// for a handler's I/O. Set before the consumer starts.
	work time.Duration

	count  atomic.Int64
	target atomic.Int64
	first  atomic.Int64 // unix nanos
	last   atomic.Int64 // unix nanos
	notify chan struct{}

	warmOnce sync.Once
	warm     chan struct{}

	record bool
	mu     sync.Mutex
	lat    []time.Duration
}

func newSink(record bool) *sink {
	s := &sink{notify: make(chan struct{}, 1), warm: make(chan struct{}), record: record}
	s.target.Store(1 << 62)
	return s
}

// handle is the consumer's callback.
func (s *sink) handle(sentAt int64) {
	if s.work > 0 && sentAt != warmup {
		time.Sleep(s.work) // the handler's work, not a wait for an event
	}
	now := time.Now()
	if sentAt == warmup {
		s.warmOnce.Do(func() { close(s.warm) })
		return
	}
	if s.record {
		s.mu.Lock()
		s.lat = append(s.lat, now.Sub(time.Unix(0, sentAt)))
		s.mu.Unlock()
	}
	s.first.CompareAndSwap(0, now.UnixNano())
	s.last.Store(now.UnixNano())
	if s.count.Add(1) >= s.target.Load() {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// waitFor waits until n messages were handled or deadline passed; it
// reports whether all n arrived.
func (s *sink) waitFor(n int64, deadline time.Time) bool {
	s.target.Store(n)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for s.count.Load() < n {
		select {
		case <-s.notify:
		case <-timer.C:
			return s.count.Load() >= n
		}
	}
	return true
}

// latencies returns a copy of the recorded latencies.
func (s *sink) latencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.lat...)
}
