package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/wire"
)

// With one worker (bus concurrency 1, as ordered subscriptions have) a
// nacked entry is redelivered before any later one: m2 nacked once is seen
// m0 m1 m2 m2 m3 ... m9, never m0 m1 m2 m3 ... m9 m2.
func TestNackedEntryNotOvertaken(t *testing.T) {
	t.Parallel()
	for _, consume := range []bool{false, true} {
		t.Run(map[bool]string{false: "Subscribe", true: "Consume"}[consume], func(t *testing.T) {
			t.Parallel()
			tr := open(t, redis.Config{})
			topic, group := uniq("nackorder"), uniq("billing")
			t.Cleanup(func() { dropStreams(tr, topic) })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
				t.Fatal(err)
			}
			pub, _ := tr.Publisher()
			defer pub.Close()
			for i := range 10 {
				if err := pub.Publish(topic, message.NewMessage(fmt.Sprintf("m%d", i), []byte("x"))); err != nil {
					t.Fatal(err)
				}
			}
			sub, _ := tr.Subscriber(group)
			defer sub.Close()
			seen := make(chan string, 20)
			nacked := false
			handle := func(m *message.Message) {
				seen <- m.UUID
				if m.UUID == "m2" && !nacked {
					nacked = true
					m.Nack()
					return
				}
				m.Ack()
			}
			if consume {
				if _, err := sub.(interface {
					Consume(context.Context, string, func(*message.Message)) (<-chan struct{}, error)
				}).Consume(ctx, topic, handle); err != nil {
					t.Fatal(err)
				}
			} else {
				msgs, err := sub.Subscribe(ctx, topic)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					for m := range msgs {
						handle(m)
					}
				}()
			}
			var order []string
			timeout := time.After(20 * time.Second)
			for len(order) < 11 {
				select {
				case id := <-seen:
					order = append(order, id)
				case <-timeout:
					t.Fatalf("got %v, want 11 deliveries", order)
				}
			}
			want := []string{"m0", "m1", "m2", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}
			if !slices.Equal(order, want) {
				t.Errorf("delivery order %v, want %v", order, want)
			}
		})
	}
}

// A malformed entry whose move to the poison lane fails (the lane key holds
// a string: WRONGTYPE) blocks the entries behind it on a one-worker
// subscription until the lane can be written; then they follow in order.
func TestFailedPoisonWriteNotOvertaken(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{NackDelayMax: 200 * time.Millisecond})
	topic, group := uniq("poisonorder"), uniq("billing")
	t.Cleanup(func() { dropStreams(tr, topic) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, redisAddr())
	lane := tr.Stream(wire.PoisonTopic(topic, group))
	if err := raw.Set(ctx, lane, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pub, _ := tr.Publisher()
	defer pub.Close()
	for i := range 5 {
		if i == 2 {
			if err := raw.Do(ctx, "XADD", tr.Stream(topic), "*", "ce_id", "bad").Err(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := pub.Publish(topic, message.NewMessage(fmt.Sprintf("m%d", i), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	recv := func(d time.Duration) bool {
		select {
		case m := <-msgs:
			m.Ack()
			order = append(order, m.UUID)
			return true
		case <-time.After(d):
			return false
		}
	}
	for len(order) < 2 {
		if !recv(10 * time.Second) {
			t.Fatalf("got %v, want m0 m1 first", order)
		}
	}
	// The lane is broken: nothing behind the malformed entry may come.
	if recv(time.Second) {
		t.Fatalf("got %v while the malformed entry could not be poisoned; m3 overtook it", order)
	}
	if err := raw.Del(ctx, lane).Err(); err != nil {
		t.Fatal(err)
	}
	for len(order) < 4 {
		if !recv(10 * time.Second) {
			t.Fatalf("got %v, want m3 m4 once the lane is writable", order)
		}
	}
	if want := []string{"m0", "m1", "m3", "m4"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	waitFor(t, 10*time.Second, "the malformed entry on the poison lane", func() bool {
		n, err := raw.XLen(ctx, lane).Result()
		return err == nil && n == 1
	})
}

// An ordered subscription whose only consumer process is killed -9 and
// restarted several times handles every event, and each for the first time
// after every earlier one: a restarted consumer (a new name, its pid) takes
// over its dead predecessor's pending entries before it reads new ones.
// BUSLINE_SOAK=1 runs 10,000 events through 5 kills; the default run 2,000
// through 3.
func TestOrderedAcrossCrashes(t *testing.T) {
	t.Parallel()
	n, kills := 2000, 3
	if os.Getenv("BUSLINE_SOAK") == "1" {
		n, kills = 10000, 5
	}
	tr := open(t, redis.Config{})
	topic, group := uniq("ordcrash"), uniq("billing")
	b, err := bus.New(tr, bus.Config{Service: "redistest", Logger: quietLogger(), Topics: map[string]string{order{}.EventName(): topic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropStreams(tr, topic) })
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := bus.Publish(context.Background(), b, order{Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[int]bool, n)
	highest, outOfOrder, calls := -1, 0, 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for run := 0; len(seen) < n; run++ {
		c := startChild(t, "ordered", topic, group)
		limit := n // the last run handles the rest
		if run < kills {
			limit = n/(2*kills) + rng.IntN(n/(2*kills))
		}
		record := func(line string) {
			seq, err := strconv.Atoi(strings.TrimPrefix(line, "handled "))
			if err != nil {
				t.Fatalf("child printed %q", line)
			}
			calls++
			if seen[seq] {
				return // redelivered after a crash: a duplicate, not a reordering
			}
			seen[seq] = true
			if seq < highest {
				outOfOrder++
				if outOfOrder <= 5 {
					t.Errorf("run %d: event %d handled for the first time after event %d", run, seq, highest)
				}
			}
			highest = max(highest, seq)
		}
		for handled := 0; handled < limit && len(seen) < n; handled++ {
			line, err := c.nextLine("handled ", 60*time.Second)
			if err != nil {
				t.Fatalf("run %d, %d of %d events seen: %v; the group: %s", run, len(seen), n, err, describeGroup(tr, topic, group))
			}
			record(line)
		}
		// The child handles ahead of what was read here: what it printed
		// before it died was handled too.
		for _, line := range c.kill() {
			if strings.HasPrefix(line, "handled ") {
				record(line)
			}
		}
	}
	t.Logf("%d events, %d kills -9: %d handler calls (%d duplicates), %d handled after a later one", n, kills, calls, calls-n, outOfOrder)
	// Each run removed its dead predecessors: the group does not keep a
	// name per restart.
	cs, err := tr.Client().XInfoConsumers(context.Background(), tr.Stream(topic), group).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) > 2 {
		t.Errorf("%d consumer names left in the group after %d restarts, want the last one or two", len(cs), kills)
	}
	t.Logf("consumer names left in the group after %d restarts: %d", kills, len(cs))
	if outOfOrder > 0 {
		t.Errorf("%d events handled after a later one, want 0", outOfOrder)
	}
}

// describeGroup says what a stalled test's group holds.
func describeGroup(tr *redis.Transport, topic, group string) string {
	ctx := context.Background()
	c := tr.Client()
	stream := tr.Stream(topic)
	var b strings.Builder
	gs, err := c.XInfoGroups(ctx, stream).Result()
	fmt.Fprintf(&b, "groups %+v (%v); ", gs, err)
	cs, err := c.XInfoConsumers(ctx, stream, group).Result()
	fmt.Fprintf(&b, "consumers %+v (%v); ", cs, err)
	for _, x := range cs {
		key := tr.Stream("live:" + strings.TrimSuffix(x.Name, "-0"))
		v, _ := c.Get(ctx, key).Result()
		ttl, _ := c.PTTL(ctx, key).Result()
		fmt.Fprintf(&b, "%s=%q pttl %v; ", key, v, ttl)
	}
	return b.String()
}

// A starting one-worker subscription waits for a predecessor only: pending
// entries of a live consumer on another host, or of this very process, do
// not keep it from reading new ones (consumer_ttl 60s here, so a wait
// would last a minute).
func TestLivePeerDoesNotDelayStart(t *testing.T) {
	t.Parallel()
	for name, peer := range map[string]string{
		"OtherHost":   "svc-otherhost-200-0",
		"SameProcess": "svc-host-100-5",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tr := open(t, redis.Config{Consumer: "svc-host-100", ConsumerTTL: time.Minute})
			topic, group := uniq("livepeer"), uniq("billing")
			t.Cleanup(func() { dropStreams(tr, topic) })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
				t.Fatal(err)
			}
			pub, _ := tr.Publisher()
			defer pub.Close()
			if err := pub.Publish(topic, message.NewMessage("held", []byte("x"))); err != nil {
				t.Fatal(err)
			}
			raw := rawClient(t, redisAddr())
			// The peer reads "held" and keeps it pending, its liveness key fresh.
			if err := raw.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: peer, Streams: []string{tr.Stream(topic), ">"}, Count: 1}).Err(); err != nil {
				t.Fatal(err)
			}
			key := "busline:live:" + strings.TrimSuffix(peer, peer[strings.LastIndexByte(peer, '-'):])
			if err := raw.Set(ctx, key, "60000", time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Del(context.Background(), key) })
			if err := pub.Publish(topic, message.NewMessage("new", []byte("x"))); err != nil {
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
				if m.UUID != "new" {
					t.Errorf("got %s, want new (held belongs to a live peer)", m.UUID)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no new entry in 30s: the subscription waited for the live peer %s", peer)
			}
		})
	}
}
