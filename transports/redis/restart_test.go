package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports/redis"
)

// Redis restarted without persistence loses the stream and its group: the
// group is recreated and the 10 events published afterwards are handled.
func TestRestartWithoutPersistence(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--appendonly", "no")
	tr := open(t, redis.Config{Addr: srv.addr})
	topic, group := uniq("nopersist"), uniq("billing")
	s := newSeen()
	b := runBus(t, tr, topic, group, s)
	publishRetrying(t, b, order{Seq: 0})
	waitFor(t, 10*time.Second, "event 0", func() bool { return s.has(0) })
	srv.restart()
	for i := 1; i <= 10; i++ {
		publishRetrying(t, b, order{Seq: i})
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "the 10 events published after the restart", func() bool { return s.has(1, 2, 3, 4, 5, 6, 7, 8, 9, 10) })
	t.Logf("10/10 events published after the restart handled in %v", time.Since(start).Round(time.Millisecond))
	var lost *redis.GroupLostError
	if err := tr.Health(context.Background()); !errors.As(err, &lost) {
		t.Errorf("Health = %v, want a GroupLostError", err)
	}
}

// Redis with appendfsync always, killed and restarted while 10,000 events
// flow: every event whose publish returned is handled.
func TestRestartWithAOF(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 events through a restart (-short)")
	}
	t.Parallel()
	srv := startServer(t, "--appendonly", "yes", "--appendfsync", "always")
	tr := open(t, redis.Config{Addr: srv.addr})
	topic, group := uniq("aof"), uniq("billing")
	s := newSeen()
	b := runBus(t, tr, topic, group, s)
	const n = 10000
	for i := range n {
		if i == n/3 {
			srv.restart()
		}
		publishRetrying(t, b, order{Seq: i})
	}
	waitFor(t, 60*time.Second, fmtSeqs(n), func() bool { d, _ := s.counts(); return d == n })
	d, calls := s.counts()
	t.Logf("AOF restart: %d published, %d handled, 0 lost, %d duplicates", n, d, calls-d)
}

// A consumer process SIGKILLed mid-handler leaves its entry pending; a live
// consumer claims and handles it within claim_idle + claim_interval.
func TestCrashBeforeAck(t *testing.T) {
	t.Parallel()
	const idle, interval = time.Second, 250 * time.Millisecond
	tr := open(t, redis.Config{ClaimIdle: idle, ClaimInterval: interval})
	topic, group := uniq("crash"), uniq("billing")
	t.Cleanup(func() { dropStreams(tr, topic) })
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	pub, _ := tr.Publisher()
	defer pub.Close()
	if err := pub.Publish(topic, message.NewMessage("crash-1", []byte("x"))); err != nil {
		t.Fatal(err)
	}

	c := startChild(t, "hang", topic, group)
	if id := c.next(t, "handling ", 15*time.Second); id != "crash-1" {
		t.Fatalf("child handles %s, want crash-1", id)
	}
	c.kill()
	killed := time.Now()

	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		m.Ack()
		took := time.Since(killed)
		t.Logf("crash-1 claimed and handled %v after the kill (claim_idle %v + claim_interval %v); 0 lost", took.Round(time.Millisecond), idle, interval)
		if m.UUID != "crash-1" {
			t.Errorf("got %s, want crash-1", m.UUID)
		}
	case <-time.After(idle + interval + 5*time.Second):
		t.Fatal("the entry of the killed consumer was never claimed")
	}
}
