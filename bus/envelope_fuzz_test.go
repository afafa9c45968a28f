package bus

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/middleware"
	"github.com/busline/busline/wire"
)

type fuzzEvent struct {
	OrderID string            `json:"order_id"`
	Total   float64           `json:"total"`
	Lines   []map[string]any  `json:"lines"`
	Tags    map[string]string `json:"tags"`
}

func (fuzzEvent) EventName() string { return "fuzz.event" }

// FuzzEnvelope feeds arbitrary payloads and CloudEvents attributes through
// the path a consumed message takes before the handler: metadata decoding,
// content-type check and payload decoding. It must never panic, and a
// message either reaches the handler with its metadata or fails as a
// permanent decode failure without reaching it.
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(`{"order_id":"A-1","total":42.5}`), "id-1", "fuzz.event", "2026-11-27T12:00:00Z", "application/json", "key")
	f.Add([]byte(`not json`), "", "", "", "", "")
	f.Add([]byte(`{"order_id":1}`), "id", "other", "yesterday", "text/plain", "")
	f.Add([]byte{0xff, 0xfe, 0x00}, "\x00", "\xff", "2026-02-30T00:00:00Z", "application/json; charset=utf-8", "\n")
	f.Add([]byte(`{"lines":[{"a":[1,2,{"b":null}]}],"tags":{"x":"y"}}`), "x", "fuzz.event", "", "", "")
	b := &Bus{cfg: Config{Codec: JSON}}
	f.Fuzz(func(t *testing.T, payload []byte, id, typ, at, contentType, key string) {
		msg := message.NewMessage("uuid-1", payload)
		for k, v := range map[string]string{MetaID: id, MetaType: typ, MetaTime: at, MetaContentType: contentType, MetaPartitionKey: key} {
			if v != "" {
				msg.Metadata.Set(k, v)
			}
		}
		msg.SetContext(context.Background())
		called := false
		s := &subscription[fuzzEvent]{bus: b, event: "fuzz.event", topic: "t", group: "g",
			handle: func(ctx context.Context, e fuzzEvent) error {
				called = true
				md, ok := MetadataFrom(ctx)
				if !ok {
					t.Fatal("handler context carries no metadata")
				}
				if want := map[bool]string{true: id, false: "uuid-1"}[id != ""]; md.ID != want || md.Key != key || md.Event != typ {
					t.Fatalf("metadata %+v does not match the message's attributes", md)
				}
				return nil
			}}
		err := s.handleMessage(msg)
		if err == nil && !called {
			t.Fatal("no error, yet the handler was not called")
		}
		if err != nil {
			var de *DecodeError
			if called || !IsPermanent(err) || !errors.As(err, &de) || middleware.Reason(err) != wire.ReasonDecode {
				t.Fatalf("err %v (handler called: %v): want a permanent decode failure before the handler", err, called)
			}
		}
	})
}
