package redis_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/wire"
)

// redisState describes every key of topic (its stream, lanes and delayed
// sets) with their groups, consumers and pending entries: what an
// inspection must leave as it found it. Idle times are left out, since
// they change by themselves.
func redisState(t *testing.T, raw *goredis.Client, tr *redis.Transport, topic string) string {
	t.Helper()
	ctx := context.Background()
	keys, err := raw.Keys(ctx, tr.Stream(topic)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sets, _ := raw.Keys(ctx, "{"+tr.Stream(topic)+"*").Result()
	keys = append(keys, sets...)
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		typ := raw.Type(ctx, k).Val()
		fmt.Fprintf(&b, "%s %s", k, typ)
		if typ == "zset" {
			fmt.Fprintf(&b, " card=%d\n", raw.ZCard(ctx, k).Val())
			continue
		}
		fmt.Fprintf(&b, " len=%d\n", raw.XLen(ctx, k).Val())
		for _, g := range raw.XInfoGroups(ctx, k).Val() {
			fmt.Fprintf(&b, "  group %s consumers=%d pending=%d last=%s read=%d lag=%d\n", g.Name, g.Consumers, g.Pending, g.LastDeliveredID, g.EntriesRead, g.Lag)
			for _, c := range raw.XInfoConsumers(ctx, k, g.Name).Val() {
				fmt.Fprintf(&b, "    consumer %s pending=%d\n", c.Name, c.Pending)
			}
			pend, _ := raw.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: k, Group: g.Name, Start: "-", End: "+", Count: 1000}).Result()
			for _, p := range pend {
				fmt.Fprintf(&b, "    pending %s %s deliveries=%d\n", p.ID, p.Consumer, p.RetryCount)
			}
		}
	}
	return b.String()
}

// Groups, Backlog, Browse and TopicExists report pending, undelivered and delayed
// messages, decode them as a subscription does, and change nothing in
// Redis: no key, group, consumer, delivery or pending entry.
func TestInspectorReadsOnly(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	raw := rawClient(t, redisAddr())
	ctx := context.Background()
	topic, group, other := uniq("inspect"), "inspected", "other"
	t.Cleanup(func() { dropStreams(tr, topic) })
	for _, g := range []string{group, other} {
		if err := tr.ProvisionGroup(ctx, topic, g); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	before := time.Now()
	const n = 5
	var uuids []string
	for i := range n {
		msg := message.NewMessage(fmt.Sprintf("m-%d", i), []byte(fmt.Sprint(i)))
		msg.Metadata.Set("k", fmt.Sprint(i))
		uuids = append(uuids, msg.UUID)
		if err := pub.Publish(topic, msg); err != nil {
			t.Fatal(err)
		}
	}
	// Two entries delivered to a consumer of group and not acked.
	if err := raw.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "elsewhere", Streams: []string{tr.Stream(topic), ">"}, Count: 2}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := tr.PublishDelayed(ctx, topic, time.Hour, message.NewMessage("later", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	state := redisState(t, raw, tr, topic)

	for range 2 {
		if groups, err := tr.Groups(ctx, topic); err != nil || !slices.Equal(groups, []string{group, other}) {
			t.Errorf("Groups = %v, %v; want [%s %s]", groups, err, group, other)
		}
		b, err := tr.Backlog(ctx, topic, group)
		if err != nil || b.Messages != n+1 {
			t.Errorf("Backlog = %+v, %v; want %d messages (2 pending, 3 undelivered, 1 delayed)", b, err, n+1)
		}
		if b.Oldest.Before(before.Add(-time.Second)) || b.Oldest.After(time.Now().Add(time.Second)) {
			t.Errorf("Backlog.Oldest = %v, want about %v", b.Oldest, before)
		}
		got, err := tr.Browse(ctx, topic, group, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range got {
			ids = append(ids, m.UUID)
		}
		if !slices.Equal(ids, uuids) {
			t.Errorf("Browse = %v, want %v (pending then undelivered, oldest first)", ids, uuids)
		}
		if got, _ := tr.Browse(ctx, topic, group, 3); len(got) != 3 || got[2].UUID != uuids[2] {
			t.Errorf("Browse with limit 3 returned %d messages", len(got))
		}
		for _, missing := range [][2]string{{topic, "nobody"}, {topic + ".missing", group}} {
			b, err := tr.Backlog(ctx, missing[0], missing[1])
			msgs, err2 := tr.Browse(ctx, missing[0], missing[1], 0)
			if err != nil || err2 != nil || b.Messages != 0 || len(msgs) != 0 {
				t.Errorf("Backlog and Browse of %s/%s = %+v, %v, %d messages, %v; want none", missing[0], missing[1], b, err, len(msgs), err2)
			}
		}
		if groups, err := tr.Groups(ctx, topic+".missing"); err != nil || len(groups) != 0 {
			t.Errorf("Groups of a missing topic = %v, %v", groups, err)
		}
		if ok, err := tr.TopicExists(ctx, topic); err != nil || !ok {
			t.Errorf("TopicExists(%s) = %v, %v; want true", topic, ok, err)
		}
		if ok, err := tr.TopicExists(ctx, topic+".missing"); err != nil || ok {
			t.Errorf("TopicExists of a missing topic = %v, %v; want false", ok, err)
		}
	}
	if after := redisState(t, raw, tr, topic); after != state {
		t.Errorf("inspecting changed Redis:\nbefore:\n%s\nafter:\n%s", state, after)
	}

	// Browse decodes as a subscription does: the other group receives the
	// same messages, with the same metadata (entry id included).
	browsed, err := tr.Browse(ctx, topic, other, 0)
	if err != nil || len(browsed) != n {
		t.Fatalf("Browse(%s) = %d messages, %v", other, len(browsed), err)
	}
	sub, err := tr.Subscriber(other)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(sctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var m *message.Message
		select {
		case m = <-ch:
		case <-sctx.Done():
			t.Fatalf("received %d of %d messages", i, n)
		}
		m.Ack()
		w := browsed[i]
		if m.UUID != w.UUID || string(m.Payload) != string(w.Payload) || !maps.Equal(m.Metadata, w.Metadata) {
			t.Errorf("delivered %s %q %v, browsed %s %q %v", m.UUID, m.Payload, m.Metadata, w.UUID, w.Payload, w.Metadata)
		}
		if w.Metadata.Get(wire.PositionMetadataKey) == "" {
			t.Errorf("browsed message %s has no %s", w.UUID, wire.PositionMetadataKey)
		}
	}
}

// Where Redis cannot tell a group's lag (an undelivered entry was
// deleted), Backlog counts the entries after the last-delivered-id; Oldest
// is the entry's ce_time when it has one.
func TestBacklogWithoutLag(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	raw := rawClient(t, redisAddr())
	ctx := context.Background()
	topic, group := uniq("nolag"), "g"
	t.Cleanup(func() { dropStreams(tr, topic) })
	stream := tr.Stream(topic)
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	published := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []string
	for i := range 4 {
		id, err := raw.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{wire.MetaTime, published.Add(time.Duration(i) * time.Second).Format(time.RFC3339), "payload", "x"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := raw.XDel(ctx, stream, ids[1]).Err(); err != nil {
		t.Fatal(err)
	}
	if gs := raw.XInfoGroups(ctx, stream).Val(); len(gs) != 1 || gs[0].Lag != -1 {
		t.Logf("XINFO GROUPS = %+v: this Redis reports a lag after XDEL", gs)
	}
	b, err := tr.Backlog(ctx, topic, group)
	if err != nil || b.Messages != 3 {
		t.Fatalf("Backlog = %+v, %v; want 3 messages", b, err)
	}
	if !b.Oldest.Equal(published) {
		t.Errorf("Oldest = %v, want the first entry's ce_time %v", b.Oldest, published)
	}
}

// bus.PoisonLane.List reads a Redis poison lane through Browse: it lists
// every message and changes nothing (no sweep marker, no read as the
// group, no ack).
func TestPoisonListReadsOnly(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	raw := rawClient(t, redisAddr())
	ctx := context.Background()
	topic, group := uniq("plist"), "g"
	lane := wire.PoisonTopic(topic, group)
	t.Cleanup(func() { dropStreams(tr, topic) })
	for _, tp := range []string{topic, lane} {
		if err := tr.ProvisionGroup(ctx, tp, group); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range 3 {
		msg := message.NewMessage(fmt.Sprintf("p-%d", i), []byte("{}"))
		msg.Metadata.Set(wire.MetaID, msg.UUID)
		if err := pub.Publish(lane, msg); err != nil {
			t.Fatal(err)
		}
	}
	state := redisState(t, raw, tr, topic)
	pl, err := bus.NewPoisonLane(tr, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	list, err := pl.List(ctx)
	if err != nil || len(list) != 3 || list[0].ID != "p-0" {
		t.Fatalf("List = %d messages, %v; want p-0, p-1, p-2", len(list), err)
	}
	if after := redisState(t, raw, tr, topic); after != state {
		t.Errorf("listing the poison lane changed Redis:\nbefore:\n%s\nafter:\n%s", state, after)
	}
}
