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
	envCrashTopic = "BUSLINE_RABBITMQ_CRASH_TOPIC"
	envCrashGroup = "BUSLINE_RABBITMQ_CRASH_GROUP"
)

// TestCrashChild is the consumer process that TestCrashBeforeAck kills. It
// runs only when started by that test.
func TestCrashChild(t *testing.T) {
	topic, group := os.Getenv(envCrashTopic), os.Getenv(envCrashGroup)
	if topic == "" {
		t.Skip("helper process of TestCrashBeforeAck")
	}
	tr := newTransport(t, rabbitmq.Config{})
	newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			fmt.Printf("HANDLING %d\n", e.Seq)
			select {} // stuck until killed
		})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	fmt.Println("READY")
	select {}
}

// A consumer process killed with SIGKILL in the middle of a handler loses
// nothing: its message, and those it had prefetched, are redelivered to
// another consumer of the group.
func TestCrashBeforeAck(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	topic, group := ids("crash")
	tr := newTransport(t, rabbitmq.Config{})
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatalf("provision: %v", err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	child.Env = append(os.Environ(), envCrashTopic+"="+topic, envCrashGroup+"="+group)
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
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	waitLine := func(prefix string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("consumer process ended before printing %s", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-deadline:
				t.Fatalf("consumer process did not print %s within 30s", prefix)
			}
		}
	}
	waitLine("READY")

	const n = 5
	pubBus := newBus(t, tr, topic, nil)
	for i := range n {
		if err := bus.Publish(context.Background(), pubBus, OrderPlaced{Order: "crash", Seq: i}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	inFlight := waitLine("HANDLING")
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatalf("kill: %v", err)
	}
	killed = true
	_ = child.Wait()
	go func() {
		for range lines {
		}
	}()
	t.Logf("killed the consumer process while %s", inFlight)

	var mu sync.Mutex
	handled := map[int]int{}
	all := make(chan struct{})
	newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			mu.Lock()
			defer mu.Unlock()
			handled[e.Seq]++
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
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("after the crash, handled %v of %d events", handled, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(inFlight, " ") {
		t.Fatalf("bad line %q", inFlight)
	}
	seq := strings.TrimPrefix(inFlight, "HANDLING ")
	t.Logf("0 lost: all %d events handled after the crash, including event %s that was mid-handler", n, seq)
}
