package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports/kafka"
)

func TestPublishDelayedRefusesAboveMaxDelay(t *testing.T) {
	t.Parallel()
	tr := open(t, testConfig(brokers(t)))
	if f := tr.Features(); !f.NativeDelay || f.MaxDelay != kafka.MaxDelay {
		t.Fatalf("Features() = %+v, want NativeDelay and MaxDelay %v", f, kafka.MaxDelay)
	}
	err := tr.PublishDelayed(context.Background(), unique("far"), kafka.MaxDelay+time.Second, message.NewMessage("m", nil))
	if err == nil || !strings.Contains(err.Error(), "MaxDelay") {
		t.Errorf("PublishDelayed above MaxDelay = %v, want a refusal naming MaxDelay", err)
	}
}

// TestDelayCrashWhileWaiting: delayed messages wait in their wait topic
// while the only consumer process (which runs the mover) is SIGKILLed; the
// next one delivers every one of them, none before its due time.
func TestDelayCrashWhileWaiting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs consumer processes; skipped with -short")
	}
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic, group := unique("delayed"), unique("waiters")
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	const n, delay = 100, 3 * time.Second
	ch := startChild(t, c.ListenAddrs(), topic, group, 2)
	for l := range ch.lines {
		if l == "ready" {
			break
		}
	}
	due := map[string]time.Time{}
	for i := range n {
		id := fmt.Sprintf("e-%d", i)
		due[id] = time.Now().Add(delay)
		if err := tr.PublishDelayed(context.Background(), topic, delay, message.NewMessage(id, []byte("{}"))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(delay / 3) // the messages are waiting; the process is running its mover
	if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = ch.cmd.Wait()
	ch.killed = true
	h := newHandling()
	for l := range ch.lines {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "h" {
			t.Errorf("the killed process handled %s before it was due", f[1])
		}
	}
	next := startChild(t, c.ListenAddrs(), topic, group, 2)
	go h.follow(next, nil)
	deadline := time.Now().Add(60 * time.Second)
	for h.distinct() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling a counter
	}
	_ = next.cmd.Process.Signal(syscall.SIGTERM)
	_ = next.cmd.Wait()
	next.killed = true
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("%d delayed messages, the mover's process killed while they waited: %d delivered afterwards", n, len(h.count))
	if len(h.count) != n {
		t.Errorf("%d of %d delayed messages delivered after the crash", len(h.count), n)
	}
}

// TestWaitTimestampAheadIsCapped: a record in a wait topic whose timestamp
// is an hour ahead of the mover's clock (a skewed producer) is held its
// level after the mover first read it, not an hour, and so does not hold
// up the record behind it.
func TestWaitTimestampAheadIsCapped(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic, group := unique("skewed"), unique("skew")
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// The transport creates the wait topic of the 1s level on first use.
	if err := tr.PublishDelayed(ctx, topic, time.Second, message.NewMessage("warm-up", nil)); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	wait := topic + ".delay.1000"
	for i, ts := range []time.Time{start.Add(time.Hour), start} {
		r := &kgo.Record{Topic: wait, Timestamp: ts, Value: []byte("{}"), Headers: []kgo.RecordHeader{
			{Key: "_watermill_message_uuid", Value: []byte(fmt.Sprintf("skewed-%d", i))},
			{Key: "busline_delay_left_ms", Value: []byte("0")},
		}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]time.Duration{}
	timeout := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case m := <-msgs:
			got[m.UUID] = time.Since(start)
			m.Ack()
		case <-timeout:
			t.Fatalf("delivered within 30s: %v", got)
		}
	}
	t.Logf("delivered after %v (stamped an hour ahead) and %v (stamped now)", got["skewed-0"], got["skewed-1"])
	if got["skewed-0"] > 10*time.Second || got["skewed-1"] > 10*time.Second {
		t.Errorf("a record stamped an hour ahead held its wait topic: %v", got)
	}
}

// TestMoveFailureRetried: the brokers refuse the mover's produces to the
// destination a few times; the mover commits nothing it did not move,
// reads the records again and delivers every one.
func TestMoveFailureRetried(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic := unique("refused")
	sub, err := tr.Subscriber("refused")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.TopicAuthorizationFailed, Count: 3})
	defer h.Remove()
	const n = 50
	batch := make([]*message.Message, 0, n)
	for i := range n {
		batch = append(batch, message.NewMessage(fmt.Sprintf("r-%d", i), []byte("{}")))
	}
	if err := tr.PublishDelayed(ctx, topic, 300*time.Millisecond, batch...); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	timeout := time.After(60 * time.Second)
	for len(got) < n {
		select {
		case m := <-msgs:
			got[m.UUID]++
			m.Ack()
		case <-timeout:
			t.Fatalf("%d of %d delayed messages delivered within 60s", len(got), n)
		}
	}
	t.Logf("%d produce requests of the mover refused; %d of %d delivered", h.Hits(), len(got), n)
	if h.Hits() == 0 {
		t.Error("no produce to the destination was refused: the test proves nothing")
	}
}
