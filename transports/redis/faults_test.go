package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/wire"
)

// An entry another client wrote with plain XADD and CloudEvents fields is
// handled by a typed handler; malformed entries go to the poison lane with
// reason malformed and the subscription keeps going.
func TestMalformedEntriesPoisonedAndInterop(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("malformed"), uniq("billing")
	s := newSeen()
	runBus(t, tr, topic, group, s)
	raw := rawClient(t, redisAddr())
	ctx := context.Background()
	stream := tr.Stream(topic)
	bad := [][]any{
		{"ce_id", "no-payload", "ce_type", "redis.test.order"},                       // missing payload field
		{"_watermill_message_uuid", "x", "metadata", "\xc1garbage", "payload", "{}"}, // a watermill-redisstream entry whose metadata is not msgpack
	}
	for _, vals := range bad {
		if err := raw.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: vals}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The interop entry, as redis-cli would write it.
	err := raw.Do(ctx, "XADD", stream, "*", "ce_id", "py-1", "ce_type", "redis.test.order", "ce_source", "python",
		"ce_specversion", "1.0", "content-type", "application/json", "payload", `{"seq":7}`).Err()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the interop entry", func() bool { return s.has(7) })
	lane, err := bus.NewPoisonLane(tr, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	var list []bus.PoisonMessage
	waitFor(t, 10*time.Second, "2 malformed entries on the poison lane", func() bool {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		list, err = lane.List(lctx)
		return err == nil && len(list) >= 2
	})
	for _, p := range list {
		if p.Failure.Reason != wire.ReasonMalformed || p.Failure.Group != group || p.Failure.Position == "" {
			t.Errorf("poisoned entry %s: reason %q group %q position %q, want malformed, %s and the entry id", p.ID, p.Failure.Reason, p.Failure.Group, p.Failure.Position, group)
		}
	}
	if d, _ := s.counts(); d != 1 {
		t.Errorf("handler saw %d events, want only the good one", d)
	}
	waitFor(t, 5*time.Second, "no pending entry left in the group (all acked)", func() bool {
		pending, err := raw.XPending(ctx, stream, group).Result()
		return err == nil && pending.Count == 0
	})
}

// Deleting the stream (as FLUSHALL or a restart without persistence does)
// loses the consumer group: the transport recreates it, reports the loss
// through Health and delivers what is published afterwards within 5s.
func TestGroupLostRecreated(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("lost"), uniq("billing")
	s := newSeen()
	b := runBus(t, tr, topic, group, s)
	if err := bus.Publish(context.Background(), b, order{Seq: 0}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "event 0", func() bool { return s.has(0) })
	raw := rawClient(t, redisAddr())
	if err := raw.Del(context.Background(), tr.Stream(topic)).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		if err := bus.Publish(context.Background(), b, order{Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "the 10 events published after the loss", func() bool { return s.has(1, 2, 3, 4, 5, 6, 7, 8, 9, 10) })
	t.Logf("10/10 events after the loss handled in %v", time.Since(start).Round(time.Millisecond))
	var lost *redis.GroupLostError
	if err := tr.Health(context.Background()); !errors.As(err, &lost) || lost.Group != group {
		t.Errorf("Health = %v, want a GroupLostError for %s", err, group)
	}
}

// A message nacked forever is redelivered at a bounded rate, not in a loop.
func TestNackDoesNotSpin(t *testing.T) {
	t.Parallel()
	tr := open(t, redis.Config{})
	topic, group := uniq("nack"), uniq("flaky")
	pub, _ := tr.Publisher()
	defer pub.Close()
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, message.NewMessage("always-fails", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	const window = 2 * time.Second
	deadline := time.After(window)
	deliveries := 0
loop:
	for {
		select {
		case m := <-msgs:
			deliveries++
			m.Nack()
		case <-deadline:
			break loop
		}
	}
	t.Logf("%d deliveries of an always-nacked message in %v", deliveries, window)
	if deliveries < 2 || deliveries > 10 {
		t.Errorf("%d deliveries in %v, want 2..10 (nack_delay 100ms doubling)", deliveries, window)
	}
}

// Passwords appear neither in errors nor in logged configuration.
func TestPasswordRedacted(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-Pa55"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cases := []redis.Config{
		{Addr: "127.0.0.1:1", Password: secret, DialTimeout: 200 * time.Millisecond},
		{URL: "redis://user:" + secret + "@127.0.0.1:1/0", DialTimeout: 200 * time.Millisecond},
		{URL: "redis://user:" + secret + "@127.0.0.1:1/notadb"},
	}
	for i, cfg := range cases {
		cfg.Logger = quietLogger()
		_, err := redis.New(ctx, cfg)
		if err == nil {
			t.Fatalf("case %d: New succeeded against a closed port", i)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("case %d: error shows the password: %v", i, err)
		}
		if v := fmt.Sprint(cfg.LogValue()); strings.Contains(v, secret) {
			t.Errorf("case %d: LogValue shows the password: %s", i, v)
		}
	}
}

// Every configuration problem is reported at once.
func TestConfigValidateJoinsProblems(t *testing.T) {
	t.Parallel()
	cfg := redis.Config{Addr: "nohostport", BatchSize: -1, MaxLen: 10, MinIDAge: time.Hour, TLS: redis.TLSConfig{CertFile: "c.pem"}}
	_, err := redis.New(context.Background(), cfg)
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{"addr", "batch_size", "max_len and min_id_age", "cert_file and key_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
