package redis_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/redis"
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
	lane := tr.Stream(middleware.PoisonTopic(topic, group))
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
