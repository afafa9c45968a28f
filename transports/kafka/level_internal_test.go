package kafka

import (
	"testing"
	"time"
)

func TestLevels(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		d, want time.Duration
	}{
		{time.Millisecond, 100 * time.Millisecond},
		{250 * time.Millisecond, 200 * time.Millisecond},
		{2 * time.Second, 2 * time.Second},
		{3 * time.Second, 2800 * time.Millisecond},
		{10 * time.Second, 9600 * time.Millisecond},
		{time.Minute, 51200 * time.Millisecond},
		{10 * time.Minute, 512 * time.Second},
	} {
		if got := level(c.d); got != c.want {
			t.Errorf("level(%v) = %v, want %v", c.d, got, c.want)
		}
	}
	// Every delay is covered by a few levels, none above it, and names
	// round-trip.
	seen := map[time.Duration]bool{}
	for d := 100 * time.Millisecond; d <= 2*time.Hour; d = d*21/20 + 7*time.Millisecond {
		left, hops := d, 0
		for left > 0 {
			l := level(left)
			if l > left && left >= delayUnit {
				t.Fatalf("level(%v) = %v is above it", left, l)
			}
			dest, back, ok := parseWaitTopic(waitTopic("orders.placed", l))
			if !ok || dest != "orders.placed" || back != l {
				t.Fatalf("parseWaitTopic(waitTopic(%v)) = %q, %v, %v", l, dest, back, ok)
			}
			seen[l] = true
			left -= l
			hops++
		}
		if hops > 6 {
			t.Errorf("delay %v takes %d hops", d, hops)
		}
	}
	t.Logf("delays from 100ms to 2h in 5%% steps use %d levels", len(seen))
	for _, topic := range []string{"orders", "orders.delay.abc", "orders.delay.150", "x.delay.-100"} {
		if _, _, ok := parseWaitTopic(topic); ok {
			t.Errorf("parseWaitTopic(%q) accepted it", topic)
		}
	}
}
