package kafka_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
)

// streamChildEnv switches the test binary into a consumer process of
// streamChild: brokers|topic|group|consumers.
const streamChildEnv = "BUSLINE_KAFKA_STREAM_CHILD"

// soakRuns is how many times a process-level scenario repeats: once, or 20
// times with BUSLINE_SOAK=1 (make soak).
func soakRuns() int {
	if os.Getenv("BUSLINE_SOAK") != "" {
		return 20
	}
	return 1
}

// streamChild consumes topic as group with several Consume calls, printing
// "h <uuid> <unix nanos>" once a message was handled, just before its ack.
// On SIGTERM it stops as an application does: no new message, the ones in
// flight finish, then the subscriber and the transport close.
func streamChild(t *testing.T, spec string) {
	parts := strings.Split(spec, "|")
	consumers, _ := strconv.Atoi(parts[3])
	cfg := testConfig(strings.Split(parts[0], ","))
	tr, err := kafka.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tr.Subscriber(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var out sync.Mutex
	var dones []<-chan struct{}
	for range consumers {
		done, err := sub.(transports.Consumer).Consume(ctx, parts[1], func(m *message.Message) {
			time.Sleep(200 * time.Microsecond) // a handler doing some work
			out.Lock()
			fmt.Printf("h %s %d\n", m.UUID, time.Now().UnixNano())
			out.Unlock()
			m.Ack()
		})
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	fmt.Println("ready")
	for _, d := range dones {
		<-d
	}
	_ = sub.Close()
	_ = tr.Close()
	fmt.Println("closed")
}

// child is a running streamChild process.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	killed bool
}

func startChild(t *testing.T, addrs []string, topic, group string, consumers int) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestStreamChild$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d", streamChildEnv, strings.Join(addrs, ","), topic, group, consumers))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if !c.killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return c
}

// TestStreamChild is the consumer process of the stream tests; it does
// nothing in a normal run.
func TestStreamChild(t *testing.T) {
	if spec := os.Getenv(streamChildEnv); spec != "" {
		streamChild(t, spec)
	}
}

// handling is what the consumers of a stream test handled, process by
// process.
type handling struct {
	mu    sync.Mutex
	count map[string]int
	times []time.Time // of every handling, in arrival order
}

func newHandling() *handling { return &handling{count: map[string]int{}} }

func (h *handling) add(id string, at time.Time) {
	h.mu.Lock()
	h.count[id]++
	h.times = append(h.times, at)
	h.mu.Unlock()
}

func (h *handling) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.count)
}

// follow records the handlings a child prints until it exits, calling
// each for every one (with the child's count so far).
func (h *handling) follow(c *child, each func(n int)) {
	n := 0
	for l := range c.lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "h" {
			continue
		}
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		h.add(f[1], time.Unix(0, ns))
		n++
		if each != nil {
			each(n)
		}
	}
}

// publishKeyed publishes n events e-0 … e-(n-1) over keys, in batches.
func publishKeyed(t testing.TB, tr *kafka.Transport, topic string, n, keys int) {
	t.Helper()
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := 0; i < n; i += 100 {
		batch := make([]*message.Message, 0, 100)
		for j := i; j < min(i+100, n); j++ {
			m := message.NewMessage(fmt.Sprintf("e-%d", j), []byte("{}"))
			m.Metadata.Set(kafka.PartitionKeyHeader, fmt.Sprintf("k%02d", j%keys))
			batch = append(batch, m)
		}
		if err := pub.Publish(topic, batch...); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// consumeRest consumes topic as group in this process, recording into h,
// until h has want distinct events or timeout passes.
func consumeRest(t *testing.T, tr *kafka.Transport, topic, group string, h *handling, want int, timeout time.Duration) {
	t.Helper()
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := sub.(transports.Consumer).Consume(ctx, topic, func(m *message.Message) {
		h.add(m.UUID, time.Now())
		m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for h.distinct() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events handled after %v", h.distinct(), want, timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling a counter
	}
	cancel()
	<-done
}

// TestGracefulStopNoDuplicates stops a consumer process with SIGTERM in the
// middle of 10,000 keyed events; the group's next consumer handles the
// rest: nothing is handled twice, nothing lost.
func TestGracefulStopNoDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs consumer processes; skipped with -short")
	}
	t.Parallel()
	for run := range soakRuns() {
		c := newCluster(t)
		tr := open(t, testConfig(c.ListenAddrs()))
		topic, group := unique("sigterm"), unique("stoppers")
		if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
			t.Fatal(err)
		}
		const n = 10000
		publishKeyed(t, tr, topic, n, 50)
		h := newHandling()
		ch := startChild(t, c.ListenAddrs(), topic, group, 4)
		var once sync.Once
		h.follow(ch, func(k int) {
			if k == 3000 {
				once.Do(func() { _ = ch.cmd.Process.Signal(syscall.SIGTERM) })
			}
		})
		if err := ch.cmd.Wait(); err != nil {
			t.Fatalf("consumer process after SIGTERM: %v", err)
		}
		ch.killed = true
		byChild := h.distinct()
		if byChild >= n {
			t.Fatal("the consumer finished before SIGTERM: the test proves nothing")
		}
		consumeRest(t, tr, topic, group, h, n, 60*time.Second)
		dups := 0
		for _, k := range h.count {
			dups += k - 1
		}
		t.Logf("run %d: %d events, the stopped process handled %d, the next one the rest: %d duplicates, %d lost", run, n, byChild, dups, n-h.distinct())
		if dups != 0 {
			t.Errorf("run %d: %d events handled twice after a graceful stop, want 0", run, dups)
		}
	}
}

// TestKillMidStream SIGKILLs a consumer process in the middle of 10,000
// keyed events: nothing is lost, and what is handled twice is at most what
// the process handled after its last commit, so within its last
// commit_interval.
func TestKillMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs consumer processes; skipped with -short")
	}
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	tr := open(t, cfg)
	topic, group := unique("sigkill"), unique("killed")
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	publishKeyed(t, tr, topic, n, 50)
	h := newHandling()
	ch := startChild(t, c.ListenAddrs(), topic, group, 4)
	var killedAt time.Time
	var once sync.Once
	h.follow(ch, func(k int) {
		if k == 3000 {
			once.Do(func() {
				killedAt = time.Now()
				_ = ch.cmd.Process.Kill()
			})
		}
	})
	_ = ch.cmd.Wait()
	ch.killed = true
	h.mu.Lock()
	byChild := len(h.count)
	lastInterval := 0
	for _, at := range h.times {
		if at.After(killedAt.Add(-cfg.CommitInterval)) {
			lastInterval++
		}
	}
	h.mu.Unlock()
	consumeRest(t, tr, topic, group, h, n, 90*time.Second)
	dups := 0
	for _, k := range h.count {
		dups += k - 1
	}
	t.Logf("%d events; the killed process handled %d, %d of them in its last commit_interval (%v): %d handled again, %d lost",
		n, byChild, lastInterval, cfg.CommitInterval, dups, n-h.distinct())
	if h.distinct() != n {
		t.Errorf("%d events lost", n-h.distinct())
	}
	// A commit takes a round trip after its tick: allow the handlings of
	// one more interval's worth of slack only if the kill landed then.
	if dups > lastInterval {
		t.Errorf("%d events handled twice, more than the %d handled in the last commit_interval", dups, lastInterval)
	}
}

// TestKillRestartFiveTimes kills the consumer process five times at
// random points of 10,000 keyed events, starting a new one each time: all
// are handled, and no gap in consumption lasts longer than the session
// timeout plus a few seconds.
func TestKillRestartFiveTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs consumer processes; skipped with -short")
	}
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	tr := open(t, cfg)
	topic, group := unique("restarts"), unique("restarted")
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	const n, kills = 10000, 5
	publishKeyed(t, tr, topic, n, 50)
	h := newHandling()
	for i := range kills {
		ch := startChild(t, c.ListenAddrs(), topic, group, 4)
		at := 300 + (i*677)%900 // kill after a few hundred events, varying
		var once sync.Once
		h.follow(ch, func(k int) {
			if k == at {
				once.Do(func() { _ = ch.cmd.Process.Kill() })
			}
		})
		_ = ch.cmd.Wait()
		ch.killed = true
	}
	final := startChild(t, c.ListenAddrs(), topic, group, 4)
	go h.follow(final, nil)
	deadline := time.Now().Add(3 * time.Minute)
	for h.distinct() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling a counter
	}
	_ = final.cmd.Process.Signal(syscall.SIGTERM)
	_ = final.cmd.Wait()
	final.killed = true
	h.mu.Lock()
	defer h.mu.Unlock()
	times := slices.Clone(h.times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	total := 0
	for _, k := range h.count {
		total += k
	}
	t.Logf("%d events, %d kills: %d handled, %d lost, %d handled again; longest gap %v (session timeout %v)",
		n, kills, len(h.count), n-len(h.count), total-len(h.count), gap.Round(time.Millisecond), cfg.SessionTimeout)
	if len(h.count) != n {
		t.Errorf("%d events lost", n-len(h.count))
	}
	if limit := cfg.SessionTimeout + 5*time.Second; gap > limit {
		t.Errorf("consumption stopped for %v, longer than the session timeout plus 5s (%v)", gap, limit)
	}
}
