package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/transports/transporttest"
)

// contentTypes are the content-type values a producer may write for JSON:
// busline reads them all as its codec's.
var contentTypes = []string{"", "application/json", "application/json; charset=utf-8", "Application/JSON"}

// handled records what a typed handler saw of each event.
type handled struct {
	mu   sync.Mutex
	byID map[int]bus.Metadata
}

func (h *handled) add(ctx context.Context, o order) error {
	md, _ := bus.MetadataFrom(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byID[o.Seq] = md
	return nil
}

func (h *handled) get(seq int) (bus.Metadata, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	md, ok := h.byID[seq]
	return md, ok
}

// TestWatermillEntriesRead: entries written by watermill-redisstream's
// publisher, and by hand in its layout (UUID field, msgpack metadata) or
// in busline's, with every spelling of the JSON content type, reach a
// typed busline handler with their ids and metadata, so that a team moves
// consumers to busline topic by topic.
func TestWatermillEntriesRead(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("fromwm"), uniq("billing")
	h := &handled{byID: map[int]bus.Metadata{}}
	b, err := bus.New(tr, bus.Config{Service: "redistest", Logger: quietLogger(), Topics: map[string]string{order{}.EventName(): topic}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Subscribe(b, group, h.add); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropStreams(tr, topic) })
	transporttest.Start(t, b)

	stream := tr.Stream(topic) // watermill-redisstream's topic is the stream key
	raw := rawClient(t, redisAddr())
	wmPub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: raw}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer wmPub.Close()
	want := map[int]string{} // seq → id
	seq := 0
	for _, ct := range contentTypes {
		// watermill-redisstream's publisher.
		id := fmt.Sprintf("wm-%d", seq)
		msg := message.NewMessage(id, []byte(fmt.Sprintf(`{"seq":%d}`, seq)))
		if ct != "" {
			msg.Metadata.Set("content-type", ct)
		}
		msg.Metadata.Set("ce_correlationid", "corr-"+id)
		if err := wmPub.Publish(stream, msg); err != nil {
			t.Fatal(err)
		}
		want[seq] = id
		seq++

		// Its layout by hand, as another language's client writes it.
		id = fmt.Sprintf("wm-hand-%d", seq)
		md := map[string]string{"ce_correlationid": "corr-" + id}
		if ct != "" {
			md["content-type"] = ct
		}
		packed, err := msgpack.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		xadd(t, raw, stream, "_watermill_message_uuid", id, "metadata", packed, "payload", fmt.Sprintf(`{"seq":%d}`, seq))
		want[seq] = id
		seq++

		// busline's layout by hand.
		id = fmt.Sprintf("hand-%d", seq)
		vals := []any{"ce_id", id, "ce_type", order{}.EventName(), "ce_source", "python", "ce_specversion", "1.0", "ce_correlationid", "corr-" + id}
		if ct != "" {
			vals = append(vals, "content-type", ct)
		}
		xadd(t, raw, stream, append(vals, "payload", fmt.Sprintf(`{"seq":%d}`, seq))...)
		want[seq] = id
		seq++
	}
	// A watermill entry without metadata, as its publisher writes a
	// message that has none.
	xadd(t, raw, stream, "_watermill_message_uuid", "wm-bare", "metadata", "", "payload", fmt.Sprintf(`{"seq":%d}`, seq))
	want[seq] = "wm-bare"

	waitFor(t, 10*time.Second, fmt.Sprintf("the %d entries handled", len(want)), func() bool {
		for s := range want {
			if _, ok := h.get(s); !ok {
				return false
			}
		}
		return true
	})
	for s, id := range want {
		md, _ := h.get(s)
		if md.ID != id {
			t.Errorf("event %d: id %q, want %q", s, md.ID, id)
		}
		if id != "wm-bare" && md.CorrelationID != "corr-"+id {
			t.Errorf("event %d (%s): correlation id %q, want corr-%s (read from its metadata)", s, id, md.CorrelationID, id)
		}
	}
	lane, err := bus.NewPoisonLane(tr, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	if poisoned, err := lane.List(context.Background()); err != nil || len(poisoned) != 0 {
		t.Errorf("poison lane holds %d entries (%v), want none", len(poisoned), err)
	}
}

// TestWatermillSubscriberReads: with WatermillCompatible, a plain
// watermill-redisstream subscriber (its default unmarshaller) reads what
// busline publishes, published at once or delayed, with the UUID and the
// metadata, and its subscription stays open; busline still reads the same
// entries.
func TestWatermillSubscriberReads(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{WatermillCompatible: true})
	topic := uniq("towm")
	s := newSeen()
	b := runBus(t, tr, topic, uniq("busline"), s)
	stream := tr.Stream(topic)

	wmClient := rawClient(t, redisAddr())
	wmSub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client: wmClient, ConsumerGroup: uniq("watermill"), DisableIndefiniteInitialBlock: true,
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer wmSub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got, err := wmSub.Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}

	const n = 6
	for i := range n {
		var opts []bus.PublishOption
		if i == n-1 {
			opts = append(opts, bus.WithDelay(100*time.Millisecond))
		}
		if err := bus.Publish(context.Background(), b, order{Seq: i}, append(opts, bus.WithCorrelationID(fmt.Sprintf("corr-%d", i)))...); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]bool{}
	timeout := time.After(10 * time.Second)
	for len(seen) < n {
		select {
		case msg, ok := <-got:
			if !ok {
				t.Fatalf("the watermill-redisstream subscription closed after %d of %d messages", len(seen), n)
			}
			var o order
			if err := json.Unmarshal(msg.Payload, &o); err != nil {
				t.Fatalf("payload %q: %v", msg.Payload, err)
			}
			seen[o.Seq] = true
			if id := msg.Metadata.Get("ce_id"); id == "" || msg.UUID != id {
				t.Errorf("event %d: UUID %q, ce_id %q: want the same id", o.Seq, msg.UUID, id)
			}
			if msg.Metadata.Get("ce_type") != (order{}).EventName() || msg.Metadata.Get("ce_correlationid") != fmt.Sprintf("corr-%d", o.Seq) || msg.Metadata.Get("content-type") != "application/json" {
				t.Errorf("event %d: metadata %v, want busline's CloudEvents attributes", o.Seq, msg.Metadata)
			}
			msg.Ack()
		case <-timeout:
			t.Fatalf("the watermill-redisstream subscriber got %d of %d messages", len(seen), n)
		}
	}
	waitFor(t, 10*time.Second, "busline to read the same entries", func() bool { return s.has(0, 1, 2, 3, 4, 5) })
}

// xadd appends an entry with vals to stream.
func xadd(t *testing.T, c *goredis.Client, stream string, vals ...any) {
	t.Helper()
	if err := c.XAdd(context.Background(), &goredis.XAddArgs{Stream: stream, Values: vals}).Err(); err != nil {
		t.Fatal(err)
	}
}
