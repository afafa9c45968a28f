package kafka_test

import (
	"bufio"
	"context"
	"encoding/base64"
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
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/wire"
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
// "h <uuid> <unix nanos> <partition>/<offset>" once a message was handled,
// just before its ack.
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
			fmt.Printf("h %s %d %s\n", m.UUID, time.Now().UnixNano(), m.Metadata.Get(wire.PositionMetadataKey))
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
	times []time.Time       // of every handling, in arrival order
	where map[string]string // uuid → partition/offset, as the children print it
}

func newHandling() *handling { return &handling{count: map[string]int{}, where: map[string]string{}} }

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
		if len(f) != 4 || f[0] != "h" {
			continue
		}
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		h.add(f[1], time.Unix(0, ns))
		h.mu.Lock()
		h.where[f[1]] = f[3]
		h.mu.Unlock()
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
	// What the killed process committed: per partition, the first record
	// not acked and those acked beyond it (the commit metadata).
	done := committedSet(t, c.ListenAddrs(), group, topic, tr.Config().Partitions)
	h.mu.Lock()
	byChild := len(h.count)
	lastInterval, uncommitted := 0, 0
	for _, at := range h.times {
		if at.After(killedAt.Add(-cfg.CommitInterval)) {
			lastInterval++
		}
	}
	for id := range h.count {
		if !done(h.where[id]) {
			uncommitted++
		}
	}
	h.mu.Unlock()
	consumeRest(t, tr, topic, group, h, n, 90*time.Second)
	dups := 0
	for _, k := range h.count {
		dups += k - 1
	}
	t.Logf("%d events; the killed process handled %d, %d of them after its last commit, %d in its last commit_interval (%v): %d handled again, %d lost",
		n, byChild, uncommitted, lastInterval, cfg.CommitInterval, dups, n-h.distinct())
	if h.distinct() != n {
		t.Errorf("%d events lost", n-h.distinct())
	}
	// Bound by what the code controls, not by timing: only what the killed
	// process handled after its last commit comes again.
	if dups > uncommitted {
		t.Errorf("%d events handled twice, more than the %d the killed process handled after its last commit", dups, uncommitted)
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

// committedSet returns whether a record at "partition/offset" is covered by
// what group committed on topic: below the committed offset, or listed as
// acked in the commit metadata ("busline-acked:v1:" and a base64url bitmap
// whose bit i, least significant first, is offset+1+i).
func committedSet(t testing.TB, addrs []string, group, topic string, partitions int32) func(pos string) bool {
	t.Helper()
	type commit struct {
		offset int64
		acked  map[int64]bool
	}
	commits := map[int32]commit{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			c := commit{offset: rp.Offset, acked: map[int64]bool{}}
			if rp.Metadata != nil {
				if enc, ok := strings.CutPrefix(*rp.Metadata, "busline-acked:v1:"); ok {
					bitmap, _ := base64.RawURLEncoding.DecodeString(enc)
					for i, b := range bitmap {
						for j := range 8 {
							if b&(1<<j) != 0 {
								c.acked[rp.Offset+1+int64(8*i+j)] = true
							}
						}
					}
				}
			}
			commits[rp.Partition] = c
		}
	}
	return func(pos string) bool {
		ps, os, ok := strings.Cut(pos, "/")
		if !ok {
			return false
		}
		p, _ := strconv.Atoi(ps)
		off, _ := strconv.ParseInt(os, 10, 64)
		c, ok := commits[int32(p)]
		return ok && (off < c.offset || c.acked[off])
	}
}
