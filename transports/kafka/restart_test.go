package kafka_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPersistent starts a kfake cluster keeping its data in dir, on port.
func startPersistent(t testing.TB, dir string, port int) *kfake.Cluster {
	t.Helper()
	var lastErr error
	for range 50 { // the port may linger briefly after a restart
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir),
			kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
		if err == nil {
			return c
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond) // waiting for the OS to release the port
	}
	t.Fatalf("start kfake on port %d: %v", port, lastErr)
	return nil
}

// collector acks every message of a subscription and records its UUID.
type collector struct {
	mu    sync.Mutex
	seen  map[string]int
	added chan struct{}
}

func collect(ctx context.Context, msgs <-chan *message.Message) *collector {
	c := &collector{seen: map[string]int{}, added: make(chan struct{}, 1)}
	go func() {
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					return
				}
				c.mu.Lock()
				c.seen[m.UUID]++
				c.mu.Unlock()
				m.Ack()
				select {
				case c.added <- struct{}{}:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return c
}

// waitDistinct waits until n distinct UUIDs were seen or timeout passes, and
// returns the count seen and the duplicates.
func (c *collector) waitDistinct(n int, timeout time.Duration) (distinct, dups int) {
	c.waitFor(func(seen map[string]int) bool { return len(seen) >= n }, timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.seen {
		dups += k - 1
	}
	return len(c.seen), dups
}

// waitFor waits until cond holds over the UUIDs seen, or timeout passes.
func (c *collector) waitFor(cond func(seen map[string]int) bool, timeout time.Duration) {
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.Lock()
		ok := cond(c.seen)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.added:
		case <-tick.C:
		case <-deadline:
			return
		}
	}
}

// TestBrokerRestart restarts the broker (same port, data kept in DataDir)
// while messages are published and consumed: nothing is lost.
func TestBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a broker; skipped with -short")
	}
	t.Parallel()
	dir, port := t.TempDir(), freePort(t)
	c := startPersistent(t, dir, port)
	t.Cleanup(func() { c.Close() })
	cfg := testConfig(c.ListenAddrs())
	tr := open(t, cfg)
	topic := unique("restart")

	sub, err := tr.Subscriber("restart")
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
	col := collect(ctx, msgs)

	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 600
	failedPublishes := 0
	for i := range n {
		if i == n/3 {
			c.Close()
			c = startPersistent(t, dir, port)
			t.Logf("broker restarted after %d messages", i)
		}
		id := fmt.Sprintf("m-%d", i)
		deadline := time.Now().Add(60 * time.Second)
		for {
			err := pub.Publish(topic, message.NewMessage(id, []byte(id)))
			if err == nil {
				break
			}
			failedPublishes++
			if time.Now().After(deadline) {
				t.Fatalf("publish %s still failing 60s after the restart: %v", id, err)
			}
		}
	}
	distinct, dups := col.waitDistinct(n, 90*time.Second)
	t.Logf("%d published (%d publish calls failed during the restart and were retried): %d handled, %d duplicates, %d lost",
		n, failedPublishes, distinct, dups, n-distinct)
	if distinct != n {
		t.Errorf("%d of %d messages lost", n-distinct, n)
	}
}
