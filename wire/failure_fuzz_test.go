package wire_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/wire"
)

// FuzzFailure checks that any metadata decodes without panicking, and that a
// record written back reads the same.
func FuzzFailure(f *testing.F) {
	f.Add("permanent", "boom", "3", "1", "2026-11-27T12:00:00.123456789Z", "2026-11-27T12:00:01Z", "0")
	f.Add("", "", "", "", "", "", "")
	f.Add("decode", "x\ny", "-1", "abc", "not a time", "2026-13-01T00:00:00Z", "99999999999999999999")
	f.Fuzz(func(t *testing.T, reason, errText, attempts, tier, first, last, replays string) {
		md := message.Metadata{
			wire.MetaReason:       reason,
			wire.MetaError:        errText,
			wire.MetaAttempts:     attempts,
			wire.MetaTier:         tier,
			wire.MetaFirstFailure: first,
			wire.MetaLastFailure:  last,
			wire.MetaReplays:      replays,
		}
		rec, _ := wire.ReadFailure(md)
		out := message.Metadata{}
		rec.Write(out)
		again, err := wire.ReadFailure(out)
		if err != nil {
			t.Fatalf("a written record does not read back: %v (%v)", err, out)
		}
		// Times round-trip at their written precision and in UTC.
		rec.FirstFailure, rec.LastFailure, rec.Due = norm(rec.FirstFailure), norm(rec.LastFailure), norm(rec.Due)
		again.FirstFailure, again.LastFailure, again.Due = norm(again.FirstFailure), norm(again.LastFailure), norm(again.Due)
		if !reflect.DeepEqual(rec, again) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, again)
		}
	})
}

func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
