package harness

import (
	"slices"
	"testing"
)

func TestKeyOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		run  func(o *keyOrder)
		want int64
	}{
		{"InOrder", func(o *keyOrder) {
			for seq := range int64(5) {
				o.start(1, seq+1)
				o.done(1)
				o.start(2, seq+1)
				o.done(2)
			}
		}, 0},
		{"RedeliveryOfTheLast", func(o *keyOrder) {
			o.start(1, 1)
			o.done(1)
			o.start(1, 1)
			o.done(1)
		}, 0},
		{"Overtaken", func(o *keyOrder) {
			o.start(1, 2)
			o.done(1)
			o.start(1, 1)
			o.done(1)
		}, 1},
		{"Overlapping", func(o *keyOrder) {
			o.start(1, 1)
			o.start(1, 2)
			o.done(1)
			o.done(1)
		}, 1},
		{"OtherKeysOverlap", func(o *keyOrder) {
			o.start(1, 1)
			o.start(2, 1)
			o.done(2)
			o.done(1)
		}, 0},
		{"NoKey", func(o *keyOrder) {
			o.start(0, 0)
			o.start(0, 0)
			o.done(0)
			o.done(0)
		}, 0},
		{"UnknownKey", func(o *keyOrder) {
			o.start(4, 1)
			o.done(4)
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newKeyOrder(3)
			tc.run(o)
			if got := o.violations(); got != tc.want {
				t.Errorf("%d violations, want %d", got, tc.want)
			}
		})
	}
}

func TestKeySendersShareTheKeys(t *testing.T) {
	t.Parallel()
	const keys, publishers, run = 10, 4, 3
	var all []int
	for i := range publishers {
		s := newKeySender(i+1, keys, publishers, run) // index 0 is the warm-up's
		seen := map[int]int64{}
		last, inRow := 0, 0
		for range 3 * run * keys {
			k, seq := s.take()
			if seq != seen[k]+1 {
				t.Fatalf("sender %d: key %d seq %d after %d", i, k, seq, seen[k])
			}
			seen[k] = seq
			if k == last {
				inRow++
			} else {
				if last != 0 && inRow != run {
					t.Fatalf("sender %d: %d messages of key %d in a row, want %d", i, inRow, last, run)
				}
				last, inRow = k, 1
			}
		}
		for k := range seen {
			all = append(all, k)
		}
	}
	slices.Sort(all)
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(all, want) {
		t.Errorf("the senders own keys %v, want each of %v once", all, want)
	}
	if k, _ := newKeySender(5, 3, 8, run).take(); k != 0 {
		t.Errorf("a sender with no key of its own sent key %d, want none (0)", k)
	}
}
