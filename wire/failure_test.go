package wire_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/wire"
)

// TestFailureReserve checks that the largest failure record Write can
// produce, with group and topic names at their 200-byte limit and every
// text over its bound, stays FailureReserve bytes or under, with room left
// for the position a transport adds to a consumed message.
func TestFailureReserve(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("é", 4096)
	name := strings.Repeat("n", 200)
	now := time.Now()
	md := message.Metadata{}
	wire.Failure{
		Reason: huge, Error: huge, ErrorType: huge, Group: name, Topic: name, Handler: huge, Position: huge,
		Attempts: 1 << 30, Tier: 1 << 30, Replays: 1 << 30, Due: now, FirstFailure: now, LastFailure: now,
	}.Write(md)
	n := 0
	for k, v := range md {
		n += len(k) + len(v)
		if !utf8.ValidString(v) {
			t.Errorf("%s: cut inside a rune: %q", k, v)
		}
	}
	const positionRoom = 128
	if n+positionRoom > wire.FailureReserve {
		t.Errorf("the largest failure record is %d bytes; with %d for a position that is over FailureReserve (%d)", n, positionRoom, wire.FailureReserve)
	}
	if got := md.Get(wire.MetaError); len(got) > wire.MaxErrorText || !strings.HasSuffix(got, "(cut)") {
		t.Errorf("error text of %d bytes, want at most %d, marked as cut", len(got), wire.MaxErrorText)
	}
}
