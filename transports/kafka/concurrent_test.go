package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/wire"
)

// TestConsumeConcurrent: a subscriber is a transports.ConcurrentConsumer.
// On one partition it hands out records in offset order with at most limit
// unsettled, takes their acks in any order and commits only the acked
// prefix (the acked ones beyond it in the metadata), hands a nacked one out
// again after nack_delay before the records not handed out yet, waits for
// the messages in flight once ctx is done, and after Close leaves what was
// unsettled to the group.
func TestConsumeConcurrent(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	cfg.Partitions = 1
	tr := open(t, cfg)
	topic, group := unique("concurrent"), unique("billing")
	ctx := context.Background()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	publishRange := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			publish(t, tr, topic, fmt.Sprintf("m%02d", i))
		}
	}
	const n, limit = 20, 5
	publishRange(0, n)
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cc, ok := sub.(transports.ConcurrentConsumer)
	if !ok {
		t.Fatalf("the kafka subscriber (%T) is no transports.ConcurrentConsumer", sub)
	}
	got := make(chan *message.Message, 2*n)
	handle := func(m *message.Message) { got <- m }
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	done, err := cc.ConsumeConcurrent(cctx, topic, limit, handle)
	if err != nil {
		t.Fatal(err)
	}
	take := func(want ...string) []*message.Message {
		t.Helper()
		var ms []*message.Message
		for _, id := range want {
			select {
			case m := <-got:
				if m.UUID != id {
					t.Fatalf("got %s, want %s", m.UUID, id)
				}
				ms = append(ms, m)
			case <-time.After(30 * time.Second):
				t.Fatalf("timed out waiting for %s", id)
			}
		}
		return ms
	}
	next := 0 // the next message expected in offset order
	inOrder := func(k int) []*message.Message {
		t.Helper()
		ids := make([]string, k)
		for i := range ids {
			ids[i] = fmt.Sprintf("m%02d", next+i)
		}
		next += k
		return take(ids...)
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case m := <-got:
			t.Fatalf("%s: got %s", what, m.UUID)
		case <-time.After(300 * time.Millisecond):
		}
	}
	settleReversed := func(ms []*message.Message) {
		for i := len(ms) - 1; i >= 0; i-- {
			ms[i].Ack()
		}
	}
	waitCommitted := func(want int64, wantMeta bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			off, meta := committed(t, c.ListenAddrs(), group, topic)
			if off == want && strings.HasPrefix(meta, "busline-acked:") == wantMeta {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("committed offset %d with metadata %q, want %d (metadata listing acked records: %v)", off, meta, want, wantMeta)
			}
			time.Sleep(cfg.CommitInterval) // the next commit
		}
	}

	batch := inOrder(limit)
	quiet(fmt.Sprintf("a message beyond the limit of %d unsettled", limit))
	settleReversed(batch)

	// A nack frees its slot and the partition goes on; the nacked record
	// comes back after nack_delay, before the records not handed out yet.
	batch = inOrder(limit) // m05..m09
	nacked := batch[1]
	nacked.Nack()
	batch = append(batch, inOrder(1)...) // m10
	quiet(fmt.Sprintf("the limit of %d unsettled, past nack_delay", limit))
	settleReversed(append(batch[:1], batch[2:]...))
	again := take(nacked.UUID) // before m11
	again[0].Ack()
	for next < n {
		settleReversed(inOrder(min(limit, n-next)))
	}
	waitCommitted(n, false)

	// Acked out of order: the commit stays at the first record not acked,
	// the ones beyond it listed in the metadata.
	publishRange(n, n+3)
	batch = inOrder(3)
	batch[1].Ack()
	batch[2].Ack()
	waitCommitted(n, true)
	batch[0].Ack()
	waitCommitted(n+3, false)

	// ctx done: no new call, but done waits for the message in flight.
	publishRange(n+3, n+4)
	inFlight := inOrder(1)[0]
	stop()
	select {
	case <-done:
		t.Fatal("done closed with a message unsettled")
	case <-time.After(300 * time.Millisecond):
	}
	inFlight.Ack()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("done not closed once the last message was settled")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	waitCommitted(n+4, false)

	// Close: the unsettled message is left to the group's next consumer.
	publishRange(n+4, n+5)
	sub2, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	done2, err := sub2.(transports.ConcurrentConsumer).ConsumeConcurrent(ctx, topic, limit, handle)
	if err != nil {
		t.Fatal(err)
	}
	take(fmt.Sprintf("m%02d", n+4)) // left unsettled
	if err := sub2.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done2:
	case <-time.After(10 * time.Second):
		t.Fatal("done not closed after Close")
	}
	sub3, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub3.Close()
	msgs, err := sub3.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.UUID != fmt.Sprintf("m%02d", n+4) {
			t.Errorf("after Close, got %s, want the unsettled m%02d", m.UUID, n+4)
		}
		m.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("the message unsettled at Close was not handed to the next consumer")
	}
}

// TestConsumeConcurrentRevoke: a partition is revoked from a concurrent
// consumer while it has messages of the partition in flight. Of each
// partition the first two records are held and the others acked at once.
// When a
// second member joins, one partition moves to it: the revoke waits its
// grace for the held records, so one acked during the grace is committed,
// then cancels the context of the one still held, and commits what was
// acked; an ack that comes only after the revoke committed is not
// committed, so the new owner handles that record again, and none of the
// acked ones, and the committed offset never moves back. The partition
// that stays goes on as before.
func TestConsumeConcurrentRevoke(t *testing.T) {
	if testing.Short() {
		t.Skip("a rebalance with a revoke grace: about 10s")
	}
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	cfg.Partitions = 2
	cfg.RebalanceTimeout = 8 * time.Second // a revoke waits 2s, then 2s more after cancelling
	tr := open(t, cfg)
	topic, group := unique("revoked"), unique("movers")
	ctx := context.Background()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	const n = 20
	publishKeyed(t, tr, topic, n, n)

	type held struct {
		msg  *message.Message
		part int
	}
	var (
		mu       sync.Mutex
		first    = map[int]held{}     // partition → its first record, held
		second   = map[int]held{}     // partition → its second record, held until the revoke's grace
		acked    = map[int][]string{} // partition → records acked before the revoke
		seen     = map[string]bool{}
		keyPart  = map[string]int{} // key → its partition
		handled  = make(chan struct{}, 1)
		moreSeen = make(chan string, n)
	)
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	done, err := sub.(transports.ConcurrentConsumer).ConsumeConcurrent(cctx, topic, n, func(m *message.Message) {
		part, _ := partitionOf(m)
		mu.Lock()
		defer mu.Unlock()
		if seen[m.UUID] {
			t.Errorf("%s handed out twice to the first member", m.UUID)
		}
		seen[m.UUID] = true
		keyPart[m.Metadata.Get(kafka.PartitionKeyHeader)] = part
		switch {
		case strings.HasPrefix(m.UUID, "more-"):
			m.Ack()
			moreSeen <- m.UUID
		case first[part].msg == nil:
			first[part] = held{m, part}
		case second[part].msg == nil:
			second[part] = held{m, part}
		default:
			acked[part] = append(acked[part], m.UUID)
			m.Ack()
		}
		select {
		case handled <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.After(d)
		for !cond() {
			select {
			case <-handled:
			case <-time.After(50 * time.Millisecond): // polling the consumers' state
			case <-deadline:
				t.Fatalf("timed out after %v waiting for %s", d, what)
			}
		}
	}
	waitUntil("every record of both partitions", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	mu.Lock()
	if len(first) != 2 {
		mu.Unlock()
		t.Fatalf("the %d keys landed on %d partition(s), want both", n, len(first))
	}
	holds := []held{first[0], first[1]}
	graced := []held{second[0], second[1]}
	mu.Unlock()
	if graced[0].msg == nil || graced[1].msg == nil {
		t.Fatalf("a partition got a single record of %d", n)
	}

	// A second member joins: one partition moves to it.
	var (
		bmu  sync.Mutex
		bGot []string
	)
	sub2, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	done2, err := sub2.(transports.Consumer).Consume(cctx, topic, func(m *message.Message) {
		bmu.Lock()
		bGot = append(bGot, m.UUID)
		bmu.Unlock()
		m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	// Acked while the revoke waits its grace (or before it starts): the
	// revoke's commit must have it, so the new owner never sees it.
	time.Sleep(1500 * time.Millisecond) // a heartbeat (500ms) and a join after the second member subscribed, within the 2s grace
	graced[0].msg.Ack()
	graced[1].msg.Ack()
	var moved, kept held
	select {
	case <-holds[0].msg.Context().Done():
		moved, kept = holds[0], holds[1]
	case <-holds[1].msg.Context().Done():
		moved, kept = holds[1], holds[0]
	case <-time.After(30 * time.Second):
		t.Fatal("no held message's context was cancelled: no partition was revoked within 30s")
	}
	t.Logf("partition %d moved with %s held; partition %d stays", moved.part, moved.msg.UUID, kept.part)
	if err := kept.msg.Context().Err(); err != nil {
		t.Fatalf("the held message of partition %d, which stays, has its context done: %v", kept.part, err)
	}
	// The revoke commits once its second wait (2s) is over; ack after it.
	time.Sleep(cfg.RebalanceTimeout/4 + time.Second) // acking after the revoke's commit is the case under test
	moved.msg.Ack()

	waitUntil("the new owner to handle the held record again", 30*time.Second, func() bool {
		bmu.Lock()
		defer bmu.Unlock()
		for _, id := range bGot {
			if id == moved.msg.UUID {
				return true
			}
		}
		return false
	})
	mu.Lock()
	movedAcked := append(acked[moved.part], second[moved.part].msg.UUID)
	mu.Unlock()
	bmu.Lock()
	for _, id := range bGot {
		for _, a := range movedAcked {
			if id == a {
				t.Errorf("the new owner got %s, which the first member acked before the revoke", id)
			}
		}
	}
	bmu.Unlock()
	want := int64(0)
	if off, err := strconv.ParseInt(strings.TrimPrefix(moved.msg.Metadata.Get(wire.PositionMetadataKey), strconv.Itoa(moved.part)+"/"), 10, 64); err == nil {
		want = off + 1
	}
	// The new owner commits past the held record; no commit of the first
	// member (the late ack) may move it back.
	deadline := time.Now().Add(20 * time.Second)
	var last int64 = -1
	for time.Now().Before(deadline) {
		off, _ := committedAt(t, c.ListenAddrs(), group, topic, int32(moved.part))
		if off < last {
			t.Fatalf("partition %d's committed offset moved back from %d to %d", moved.part, last, off)
		}
		last = off
		if off >= want && time.Until(deadline) < 17*time.Second {
			break // and three seconds of commits by both members did not move it back
		}
		time.Sleep(cfg.CommitInterval)
	}
	if last < want {
		t.Errorf("partition %d's committed offset is %d, want at least %d (past the held record)", moved.part, last, want)
	}

	// The partition that stayed goes on.
	kept.msg.Ack()
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var key string
	mu.Lock()
	for k, p := range keyPart {
		if p == kept.part {
			key = k
		}
	}
	mu.Unlock()
	m := message.NewMessage("more-0", []byte("{}"))
	m.Metadata.Set(kafka.PartitionKeyHeader, key)
	if err := pub.Publish(topic, m); err != nil {
		t.Fatal(err)
	}
	select {
	case <-moreSeen:
	case <-time.After(30 * time.Second):
		t.Fatal("the first member handled nothing more of the partition it kept")
	}
	stop()
	for _, d := range []<-chan struct{}{done, done2} {
		select {
		case <-d:
		case <-time.After(30 * time.Second):
			t.Fatal("a consumer did not end")
		}
	}
}

// partitionOf reads the partition of a consumed message's busline_position.
func partitionOf(m *message.Message) (int, bool) {
	p, _, ok := strings.Cut(m.Metadata.Get(wire.PositionMetadataKey), "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	return n, err == nil
}

// committedAt returns the offset and metadata group committed for
// partition of topic, -1 when none.
func committedAt(t testing.TB, addrs []string, group, topic string, partition int32) (int64, string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{partition}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.Partition != partition {
				continue
			}
			md := ""
			if rp.Metadata != nil {
				md = *rp.Metadata
			}
			return rp.Offset, md
		}
	}
	return -1, ""
}
