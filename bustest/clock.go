package bustest

import (
	"slices"
	"sync"
	"time"

	"github.com/busline/busline/transports/memory"
)

// Clock is a fake clock for the memory transport's timer heap
// (memory.Config.Clock): time stands still until Advance moves it, so a test
// of delayed redelivery or scheduled publish runs without sleeping. Pass it
// to New with WithClock. It is safe for concurrent use.
//
// Only the transport's delays follow it. The bus itself keeps real time:
// immediate retries still wait their (real) backoff, and the due times in
// failure records are wall-clock metadata; delivery follows the transport.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	waiters []*waiter
}

// waiter is a function waiting for its time on a Clock.
type waiter struct {
	due time.Time
	seq uint64
	f   func()
}

var _ memory.Clock = (*Clock)(nil)

// NewClock returns a fake clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to be called once the clock has been advanced by
// d; when d <= 0, f is called at once on a new goroutine, as time.AfterFunc
// would. stop cancels the call and reports whether it did.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	if d <= 0 {
		go f()
		return func() bool { return false }
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	w := &waiter{due: c.now.Add(d), seq: c.seq, f: f}
	c.waiters = append(c.waiters, w)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.waiters, w)
		if i < 0 {
			return false
		}
		c.waiters = slices.Delete(c.waiters, i, i+1)
		return true
	}
}

// Advance moves the clock forward by d and calls, in the order of their due
// times, the functions that become due, each with the clock reading its due
// time; functions these schedule within d are called too. It returns once
// they returned: for the memory transport, the messages due by then are in
// their groups' queues. Call it from one goroutine at a time.
//
// Advance fires only what is scheduled when it runs: wait for a message to
// reach its retry lane (WaitRetrying) before advancing past its delay.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		w := c.nextDue(target)
		if w == nil {
			if target.After(c.now) {
				c.now = target
			}
			c.mu.Unlock()
			return
		}
		if w.due.After(c.now) {
			c.now = w.due
		}
		c.mu.Unlock()
		w.f()
	}
}

// nextDue removes and returns the earliest waiter due by target, or nil.
// c.mu is held.
func (c *Clock) nextDue(target time.Time) *waiter {
	best := -1
	for i, w := range c.waiters {
		if w.due.After(target) {
			continue
		}
		if best < 0 || w.due.Before(c.waiters[best].due) || w.due.Equal(c.waiters[best].due) && w.seq < c.waiters[best].seq {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	w := c.waiters[best]
	c.waiters = slices.Delete(c.waiters, best, best+1)
	return w
}

// Pending returns how many calls wait on the clock: for the memory
// transport, 1 while messages wait in its timer heap, 0 otherwise.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
