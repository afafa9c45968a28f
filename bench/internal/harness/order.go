package harness

import (
	"sync"
	"sync/atomic"
)

// keyOrder checks the handling order of keyed samples: the messages of one
// key must be handled one at a time, in the order of their seq. It is safe
// for concurrent use.
type keyOrder struct {
	keys []keyState // index: the sample's key, 1..len(keys)-1
	bad  atomic.Int64
}

type keyState struct {
	mu      sync.Mutex
	last    int64 // highest seq whose handling started
	running int   // handlings of the key under way
}

func newKeyOrder(keys int) *keyOrder { return &keyOrder{keys: make([]keyState, keys+1)} }

// start records that the handling of seq of key begins, counting a
// violation when a later seq of the key was already handled or another
// message of the key is being handled. A redelivery of the last seq is not
// a violation. Key 0 is a message without a key: it has no order to keep.
// Call done when the handling ends.
func (o *keyOrder) start(key int, seq int64) {
	if key == 0 {
		return
	}
	if key < 0 || key >= len(o.keys) {
		o.bad.Add(1) // not a key the senders use
		return
	}
	k := &o.keys[key]
	k.mu.Lock()
	defer k.mu.Unlock()
	if seq < k.last || k.running > 0 {
		o.bad.Add(1)
	}
	k.last = max(k.last, seq)
	k.running++
}

// done records that a handling begun by start ended.
func (o *keyOrder) done(key int) {
	if key <= 0 || key >= len(o.keys) {
		return
	}
	k := &o.keys[key]
	k.mu.Lock()
	k.running--
	k.mu.Unlock()
}

func (o *keyOrder) violations() int64 { return o.bad.Load() }

// keySender assigns the keys of one publishing goroutine: of keys 1..keys,
// those equal to index modulo publishers, in turn, run messages of each
// key in a row, as the events of one entity come close together. As no
// other sender publishes its keys, and each publish returns once the broker
// has the message, each key's seq is the order the broker got them in, and
// the messages of a run are close enough to be in flight together.
type keySender struct {
	own  []int
	seqs []int64
	run  int64
	next int
}

func newKeySender(index, keys, publishers, run int) *keySender {
	s := &keySender{run: int64(max(run, 1))}
	for k := 1; k <= keys; k++ {
		if k%publishers == index%publishers {
			s.own = append(s.own, k)
		}
	}
	s.seqs = make([]int64, len(s.own))
	return s
}

// take returns the next key and its seq; key 0 when the sender owns none
// (more publishers than keys): the message is then sent without a key.
func (s *keySender) take() (key int, seq int64) {
	if len(s.own) == 0 {
		return 0, 0
	}
	i := s.next
	s.seqs[i]++
	if s.seqs[i]%s.run == 0 {
		s.next = (s.next + 1) % len(s.own)
	}
	return s.own[i], s.seqs[i]
}
