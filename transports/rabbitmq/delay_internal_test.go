package rabbitmq

import (
	"strings"
	"testing"
	"time"
)

// A delay is rounded up to whole units, never down, and spelled in binary
// in the routing key, highest level first; each level's patterns match
// exactly the keys whose bit for that level is set (queue) or clear (next
// level), whatever the other bits.
func TestDelayRouting(t *testing.T) {
	for _, c := range []struct {
		d     time.Duration
		units uint64
	}{
		{-time.Second, 0}, {0, 0}, {time.Nanosecond, 1}, {DelayUnit, 1}, {DelayUnit + 1, 2},
		{2 * time.Second, 20}, {45 * time.Minute, 27000}, {MaxDelay, 1<<DelayLevels - 1},
	} {
		if got := delayUnits(c.d); got != c.units {
			t.Errorf("delayUnits(%v) = %d, want %d", c.d, got, c.units)
		}
	}
	key := delayRoutingKey(27000) // 45 minutes
	words := strings.Split(key, ".")
	if len(words) != DelayLevels {
		t.Fatalf("routing key %q has %d words, want %d", key, len(words), DelayLevels)
	}
	for level := range DelayLevels {
		bit := 27000 >> level & 1
		set, clear := topicMatch(levelPattern(level, '1'), key), topicMatch(levelPattern(level, '0'), key)
		if set != (bit == 1) || clear != (bit == 0) {
			t.Errorf("level %d (bit %d): queue pattern matches %v, next-level pattern matches %v", level, bit, set, clear)
		}
	}
}

// topicMatch is RabbitMQ's topic matching for the patterns levelPattern
// makes: "*" one word, a final "#" any number of words.
func topicMatch(pattern, key string) bool {
	p, k := strings.Split(pattern, "."), strings.Split(key, ".")
	for i, w := range p {
		if w == "#" {
			return true
		}
		if i >= len(k) || (w != "*" && w != k[i]) {
			return false
		}
	}
	return len(p) == len(k)
}
