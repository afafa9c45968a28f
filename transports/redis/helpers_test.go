package redis_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/transports/transporttest"
)

// order is the event the tests publish.
type order struct {
	Seq int `json:"seq"`
}

func (order) EventName() string { return "redis.test.order" }

// seen records handled sequence numbers.
type seen struct {
	mu    sync.Mutex
	calls int
	seqs  map[int]int
	ch    chan struct{}
}

func newSeen() *seen { return &seen{seqs: map[int]int{}, ch: make(chan struct{}, 1)} }

func (s *seen) add(seq int) {
	s.mu.Lock()
	s.calls++
	s.seqs[seq]++
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func (s *seen) has(seqs ...int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range seqs {
		if s.seqs[q] == 0 {
			return false
		}
	}
	return true
}

func (s *seen) counts() (distinct, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs), s.calls
}

// waitFor waits until cond holds or fails t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// runBus starts a bus on tr whose group handles order events of topic into s.
func runBus(t *testing.T, tr *redis.Transport, topic, group string, s *seen) *bus.Bus {
	t.Helper()
	b, err := bus.New(tr, bus.Config{Service: "redistest", Logger: quietLogger(), Topics: map[string]string{order{}.EventName(): topic}})
	if err != nil {
		t.Fatal(err)
	}
	if s != nil {
		err = bus.Subscribe(b, group, func(_ context.Context, o order) error { s.add(o.Seq); return nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { dropStreams(tr, topic) })
	transporttest.Start(t, b)
	return b
}

// server is a private redis-server for tests that kill or restart it.
type server struct {
	t    *testing.T
	addr string
	args []string
	cmd  *exec.Cmd
}

// startServer starts redis-server on a free loopback port with args, stopped
// at the end of t.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testing.Short() {
			t.Skip("no redis-server binary (-short)")
		}
		t.Fatal("no redis-server binary: apt-get install redis-server")
	}
	port := freePort(t)
	s := &server{t: t, addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(), "--save", ""}, args...)
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	waitFor(s.t, 10*time.Second, "redis-server on "+s.addr, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// kill stops the server with SIGKILL and waits for it.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *server) restart() {
	s.kill()
	s.start()
}

// publishRetrying publishes o, retrying while the server is down.
func publishRetrying(t *testing.T, b *bus.Bus, o order) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := bus.Publish(context.Background(), b, o)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %d: %v", o.Seq, err)
		}
		time.Sleep(50 * time.Millisecond) // the server is restarting: poll
	}
}

func fmtSeqs(n int) string { return fmt.Sprintf("%d events", n) }

// dropStreams deletes topic's stream, its lanes and their delayed sets.
func dropStreams(tr *redis.Transport, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := tr.Client()
	if c.Ping(ctx).Err() != nil {
		return
	}
	keys, _ := c.Keys(ctx, tr.Stream(topic)+"*").Result()
	sets, _ := c.Keys(ctx, "{"+tr.Stream(topic)+"*").Result() // delayed sets
	keys = append(keys, sets...)
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}
