package bus

import (
	"context"
	"strings"
	"testing"
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
