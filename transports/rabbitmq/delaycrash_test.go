package rabbitmq_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/rabbitmq"
)

const (
	envDelayCrashTopic = "BUSLINE_RABBITMQ_DELAY_CRASH_TOPIC"
	envDelayCrashGroup = "BUSLINE_RABBITMQ_DELAY_CRASH_GROUP"
)

// TestDelayCrashChild is the only consumer process of its group, which
// TestScheduledPublishSurvivesConsumerCrash kills while the group's events
// wait. It runs only when started by that test.
func TestDelayCrashChild(t *testing.T) {
	topic, group := os.Getenv(envDelayCrashTopic), os.Getenv(envDelayCrashGroup)
	if topic == "" {
		t.Skip("helper process of TestScheduledPublishSurvivesConsumerCrash")
	}
	tr := newTransport(t, rabbitmq.Config{})
	newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			fmt.Printf("HANDLED %d\n", e.Seq)
			return nil
		})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	fmt.Println("READY")
	select {}
}

// Scheduled events wait on the broker, not in a consumer: killing (SIGKILL)
// the group's only consumer process while they wait loses none of them;
// the next consumer gets each once it is due.
func TestScheduledPublishSurvivesConsumerCrash(t *testing.T) {
	requireBroker(t)
	topic, group := ids("delay.crash")
	child := exec.Command(os.Args[0], "-test.run=^TestDelayCrashChild$", "-test.v")
	child.Env = append(os.Environ(), envDelayCrashTopic+"="+topic, envDelayCrashGroup+"="+group)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatalf("start consumer process: %v", err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	})
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	select {
	case l, ok := <-lines:
		for ok && l != "READY" {
			l, ok = <-lines
		}
		if !ok {
			t.Fatal("consumer process ended before it was ready")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("consumer process not ready within 60s")
	}

	tr := newTransport(t, rabbitmq.Config{})
	pub := newBus(t, tr, topic, nil)
	const n = 100
	due := make([]time.Time, n)
	for i := range n {
		d := 3*time.Second + time.Duration(i)*10*time.Millisecond
		due[i] = time.Now().Add(d)
		if err := bus.Publish(context.Background(), pub, OrderPlaced{Order: "scheduled", Seq: i}, bus.WithDelay(d)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL, while every event waits
		t.Fatalf("kill: %v", err)
	}
	killed = true
	_ = child.Wait()
	var early []string
	for l := range lines {
		if strings.HasPrefix(l, "HANDLED") {
			early = append(early, l)
		}
	}
	if time.Now().After(due[0]) {
		t.Fatalf("publishing took past the first due time (%v): the kill did not happen while every event waited", due[0])
	}
	if len(early) > 0 {
		t.Fatalf("the killed process handled %v before their due time", early)
	}

	var mu sync.Mutex
	handled := map[int]int{}
	at := map[int]time.Time{}
	all := make(chan struct{})
	newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			mu.Lock()
			defer mu.Unlock()
			handled[e.Seq]++
			if _, ok := at[e.Seq]; !ok {
				at[e.Seq] = time.Now()
			}
			if len(handled) == n {
				select {
				case <-all:
				default:
					close(all)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("after the crash, %d of %d scheduled events handled", len(handled), n)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	var worst time.Duration
	for i := range n {
		dups += handled[i] - 1
		if at[i].Before(due[i]) {
			t.Errorf("event %d handled %v before its due time", i, due[i].Sub(at[i]))
		}
		worst = max(worst, at[i].Sub(due[i]))
	}
	t.Logf("consumer killed with %d scheduled events waiting: all %d handled by the next consumer, %d duplicates, worst lateness %v", n, n, dups, worst)
}
