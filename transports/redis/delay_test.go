package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/transports/transporttest"
	"github.com/busline/busline/wire"
)

// Two movers running at once move each due member exactly once: 2,000
// members, moved 7 at a time by two concurrent movers, arrive once each.
func TestMoverMovesEachOnce(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic := uniq("mover")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx := context.Background()
	const n = 2000
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(fmt.Sprintf("m-%d", i), []byte(fmt.Sprint(i)))
	}
	if err := tr.PublishDelayed(ctx, topic, time.Millisecond, msgs...); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, redisAddr())
	if c, _ := raw.ZCard(ctx, tr.DelayedKey(topic)).Result(); c != n {
		t.Fatalf("delayed set holds %d members, want %d", c, n)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	deadline := time.Now().Add(30 * time.Second)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				moved, err := tr.MoveDue(ctx, topic, 7)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total += moved
				done := total >= n
				mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	wg.Wait()
	entries, err := raw.XRange(ctx, tr.Stream(topic), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range entries {
		seen[e.Values["busline_uuid"].(string)]++
	}
	if total != n || len(entries) != n || len(seen) != n {
		t.Errorf("movers report %d moved, stream holds %d entries of %d distinct messages; want %d of each", total, len(entries), len(seen), n)
	}
	if c, _ := raw.ZCard(ctx, tr.DelayedKey(topic)).Result(); c != 0 {
		t.Errorf("delayed set still holds %d members", c)
	}
}

// Delayed messages are moved into a lane untrimmed, while the main topic's
// trimming applies to what is moved into the main stream.
func TestDelayedLaneNotTrimmed(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{MaxLen: 4, ExactTrim: true})
	topic := uniq("dtrim")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx := context.Background()
	lane := wire.RetryTopic(topic, "billing")
	const n = 8
	for _, to := range []string{lane, topic} {
		msgs := make([]*message.Message, n)
		for i := range msgs {
			msgs[i] = message.NewMessage(fmt.Sprintf("%s-%d", to, i), []byte("x"))
		}
		if err := tr.PublishDelayed(ctx, to, time.Millisecond, msgs...); err != nil {
			t.Fatal(err)
		}
		moved := 0
		waitFor(t, 10*time.Second, "all moved", func() bool {
			m, err := tr.MoveDue(ctx, to, 100)
			if err != nil {
				t.Fatal(err)
			}
			moved += m
			return moved == n
		})
	}
	raw := rawClient(t, redisAddr())
	if l, _ := raw.XLen(ctx, tr.Stream(lane)).Result(); l != n {
		t.Errorf("retry lane holds %d entries, want all %d (lanes are never trimmed)", l, n)
	}
	if l, _ := raw.XLen(ctx, tr.Stream(topic)).Result(); l != 4 {
		t.Errorf("main stream holds %d entries, want 4 (max_len 4, exact)", l)
	}
}

// 1,000 messages delayed 0-2s reach a running subscription never early;
// the lateness distribution is logged. Stored through the subscription's own
// transport, the mover is woken at once; stored by another (as another
// process would), the mover finds them within delay_poll.
func TestDelayedLateness(t *testing.T) {
	t.Parallel()
	t.Run("SameTransport", func(t *testing.T) {
		t.Parallel()
		tr := open(t, redis.Config{})
		testLateness(t, tr, tr)
	})
	t.Run("OtherProcess", func(t *testing.T) {
		t.Parallel()
		testLateness(t, open(t, redis.Config{}), open(t, redis.Config{}))
	})
}

func testLateness(t *testing.T, tr, pub *redis.Transport) {
	topic, group := uniq("late"), uniq("billing")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var mu sync.Mutex
	due := make(map[string]time.Time, n)
	start := time.Now()
	published := make(chan error, 1)
	go func() {
		for i := range n {
			d := time.Duration(i) * 2 * time.Second / n
			id := fmt.Sprintf("late-%d", i)
			mu.Lock()
			due[id] = time.Now().Add(d)
			mu.Unlock()
			if err := pub.PublishDelayed(ctx, topic, d, message.NewMessage(id, []byte("x"))); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	var late []time.Duration
	timeout := time.After(time.Until(start.Add(2*time.Second)) + 30*time.Second)
	for len(late) < n {
		select {
		case err := <-published:
			if err != nil {
				t.Fatal(err)
			}
		case m := <-msgs:
			got := time.Now()
			m.Ack()
			mu.Lock()
			d, ok := due[m.UUID]
			delete(due, m.UUID)
			mu.Unlock()
			if !ok {
				t.Fatalf("unexpected message %s", m.UUID)
			}
			// Never early, allowing 2ms for the wall clock Redis reads
			// against Go's monotonic one.
			if early := d.Sub(got); early > 2*time.Millisecond {
				t.Errorf("%s arrived %v before its due time", m.UUID, early)
			}
			late = append(late, got.Sub(d))
		case <-timeout:
			t.Fatalf("%d of %d delayed messages arrived", len(late), n)
		}
	}
	slices.Sort(late)
	t.Logf("lateness of %d delayed messages (0-2s): p50 %v p99 %v max %v", n, late[n/2].Round(time.Millisecond), late[n*99/100].Round(time.Millisecond), late[n-1].Round(time.Millisecond))
}

// Scheduled publish survives a kill -9 of the only consumer process while
// the messages wait: 100 messages due 1-3s after their publish, the child
// consumer killed once it got 10 of them (the rest still waiting in Redis);
// a new consumer gets every one of them, none before its due time.
func TestDelayedSurvivesConsumerKill(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{ClaimIdle: time.Second, ClaimInterval: 250 * time.Millisecond})
	topic, group := uniq("dkill"), uniq("billing")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "ack", topic, group)
	c.next(t, "ready", 15*time.Second)
	const n = 100
	due := map[string]time.Time{}
	for i := range n {
		d := time.Second + time.Duration(i)*2*time.Second/n
		id := fmt.Sprintf("dk-%d", i)
		due[id] = time.Now().Add(d)
		if err := tr.PublishDelayed(ctx, topic, d, message.NewMessage(id, []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	check := func(id string, at time.Time) {
		d, ok := due[id]
		if !ok {
			t.Fatalf("unexpected message %q", id)
		}
		if early := d.Sub(at); early > 2*time.Millisecond {
			t.Errorf("%s delivered %v before its due time", id, early)
		}
		got[id] = true
	}
	for len(got) < 10 {
		check(c.next(t, "got ", 15*time.Second), time.Now())
	}
	for _, l := range c.kill() { // got (and acked) before it died
		if id, ok := strings.CutPrefix(l, "got "); ok {
			check(id, time.Now())
		}
	}
	if w, _ := rawClient(t, redisAddr()).ZCard(ctx, tr.DelayedKey(topic)).Result(); w == 0 {
		t.Fatal("nothing was waiting when the consumer was killed")
	} else {
		t.Logf("consumer killed with %d messages handled and %d waiting in Redis", len(got), w)
	}
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case m := <-msgs:
			check(m.UUID, time.Now())
			m.Ack()
		case <-timeout:
			t.Fatalf("%d of %d scheduled messages delivered after the kill", len(got), n)
		}
	}
}

// A delayed message is kept by Redis across a restart (appendonly on) and
// delivered once due.
func TestDelayedSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--appendonly", "yes", "--appendfsync", "always")
	tr := open(t, redis.Config{Addr: srv.addr})
	topic, group := uniq("drestart"), uniq("billing")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	if err := tr.PublishDelayed(ctx, topic, time.Second, message.NewMessage("kept", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	srv.restart()
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		m.Ack()
		if m.UUID != "kept" {
			t.Errorf("got %s, want kept", m.UUID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the delayed message was lost in the restart")
	}
}

// A group with three delay tiers costs three keys besides the topic's
// stream, however many tiers: its retry lane, the lane's delayed set and its
// poison lane.
func TestKeysPerGroupWithThreeTiers(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("keys"), uniq("billing")
	b, err := bus.New(tr, bus.Config{Service: "redistest", Logger: quietLogger(), Topics: map[string]string{order{}.EventName(): topic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropStreams(tr, topic) })
	failed := make(chan struct{}, 1)
	err = bus.Subscribe(b, group, func(context.Context, order) error {
		select {
		case failed <- struct{}{}:
		default:
		}
		return errors.New("fails")
	}, bus.WithDelays(time.Minute, 10*time.Minute, time.Hour), bus.WithRetry(middleware.RetryPolicy{Attempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	transporttest.Start(t, b)
	if err := bus.Publish(context.Background(), b, order{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	<-failed
	raw := rawClient(t, redisAddr())
	ctx := context.Background()
	var keys []string
	waitFor(t, 10*time.Second, "the failed event in the retry lane's delayed set", func() bool {
		c, _ := raw.ZCard(ctx, tr.DelayedKey(wire.RetryTopic(topic, group))).Result()
		keys, _ = raw.Keys(ctx, "*"+topic+"*").Result()
		return c == 1
	})
	slices.Sort(keys)
	want := []string{
		tr.Stream(topic),
		tr.Stream(wire.PoisonTopic(topic, group)),
		tr.Stream(wire.RetryTopic(topic, group)),
		tr.DelayedKey(wire.RetryTopic(topic, group)),
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys of a topic with one group and 3 tiers: %q, want %q", keys, want)
	}
	t.Logf("keys for one group with 3 tiers: %q", keys)
}

// A member of a delayed set that does not parse (written by hand) neither
// blocks the set nor disappears: it is moved as an entry the subscription
// poisons as malformed, and the valid member behind it is delivered.
func TestDelayedMalformedMemberPoisoned(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("dbad"), uniq("billing")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, redisAddr())
	if err := raw.ZAdd(ctx, tr.DelayedKey(topic), goredis.Z{Score: 0, Member: "not:a member"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := tr.PublishDelayed(ctx, topic, time.Millisecond, message.NewMessage("good", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		m.Ack()
		if m.UUID != "good" {
			t.Errorf("got %s, want good", m.UUID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the valid delayed message behind a malformed member never came")
	}
	lane := tr.Stream(wire.PoisonTopic(topic, group))
	var entries []goredis.XMessage
	waitFor(t, 10*time.Second, "the malformed member on the poison lane", func() bool {
		entries, _ = raw.XRange(ctx, lane, "-", "+").Result()
		return len(entries) == 1
	})
	if r := entries[0].Values[wire.MetaReason]; r != wire.ReasonMalformed {
		t.Errorf("poisoned with reason %v, want %s", r, wire.ReasonMalformed)
	}
	if c, _ := raw.ZCard(ctx, tr.DelayedKey(topic)).Result(); c != 0 {
		t.Errorf("delayed set still holds %d members", c)
	}
}
