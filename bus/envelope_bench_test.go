package bus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

type benchEvent struct {
	OrderID  string  `json:"order_id"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
	Note     string  `json:"note"`
}

func (benchEvent) EventName() string { return "orders.placed" }

// BenchmarkEnvelope measures building the CloudEvents envelope of a 256-byte
// event: id, time, metadata and JSON.
func BenchmarkEnvelope(b *testing.B) {
	bb := &Bus{cfg: Config{Service: "bench"}}
	bb.cfg.setDefaults()
	e := benchEvent{OrderID: "A-1001", Customer: "ada@example.com", Total: 42.5, Note: strings.Repeat("x", 180)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bb.newMessage(ctx, "orders.placed", e, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIDAndTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 16, 0, 0, 123_456_789, time.UTC)
	id, at := idAndTime(now)
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || u.String() != id {
		t.Fatalf("id %q: %v, version %d, variant %v; want a canonical UUIDv7", id, err, u.Version(), u.Variant())
	}
	if sec, nsec := u.Time().UnixTime(); !time.Unix(sec, nsec).Equal(now.Truncate(time.Millisecond)) {
		t.Errorf("id time %v, want %v", time.Unix(sec, nsec).UTC(), now.Truncate(time.Millisecond))
	}
	if at != "2026-12-01T16:00:00.123456789Z" {
		t.Errorf("ce_time %q", at)
	}
	// Ids sort by time below the millisecond, and never repeat.
	seen := map[string]bool{}
	prev := ""
	for i := range 10_000 {
		id, _ := idAndTime(now.Add(time.Duration(i) * time.Microsecond))
		if seen[id] {
			t.Fatalf("id %s twice", id)
		}
		seen[id] = true
		if i%250 == 0 && prev != "" && id <= prev { // 250 µs apart: past the 244 ns resolution
			t.Fatalf("id %s at +%dµs sorts before %s", id, i, prev)
		}
		if i%250 == 0 {
			prev = id
		}
	}
}
