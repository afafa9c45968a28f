package kafka_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/transports/kafka"
)

const crashChildEnv = "BUSLINE_KAFKA_CRASH_CHILD"

// TestCrashBeforeCommit SIGKILLs a consumer process that acked some
// messages and holds one in its handler: the group handles the held message
// and every message whose offset was not committed afterwards.
func TestCrashBeforeCommit(t *testing.T) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		crashChild(t, spec)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process; skipped with -short")
	}
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic, group := unique("crash"), unique("crashers")
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	const n, childAcks = 200, 50
	for i := range n {
		publish(t, tr, topic, fmt.Sprintf("m-%d", i))
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestCrashBeforeCommit$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d", crashChildEnv, c.ListenAddrs()[0], topic, group, childAcks))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	childHandled := map[string]bool{}
	held := ""
	timeout := time.After(60 * time.Second)
	for held == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited before holding a message (handled %d)", len(childHandled))
			}
			if id, ok := strings.CutPrefix(l, "handled "); ok {
				childHandled[id] = true
			} else if id, ok := strings.CutPrefix(l, "holding "); ok {
				held = id
			}
		case <-timeout:
			t.Fatalf("child handled %d messages and held none within 60s", len(childHandled))
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no commit, no LeaveGroup
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	for range lines {
	}

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
	col := collect(ctx, msgs)
	col.waitFor(func(seen map[string]int) bool {
		for i := range n {
			if id := fmt.Sprintf("m-%d", i); seen[id] == 0 && !childHandled[id] {
				return false
			}
		}
		return true
	}, 60*time.Second)
	col.mu.Lock()
	defer col.mu.Unlock()
	missing, redelivered := 0, 0
	for i := range n {
		id := fmt.Sprintf("m-%d", i)
		switch {
		case col.seen[id] > 0 && childHandled[id]:
			redelivered++
		case col.seen[id] == 0 && !childHandled[id]:
			missing++
		}
	}
	t.Logf("child acked %d, held %s, was killed; the group then handled %d (%d of them acked by the child before its last commit: duplicates), %d lost",
		len(childHandled), held, len(col.seen), redelivered, missing)
	if col.seen[held] == 0 {
		t.Errorf("the message %s the killed consumer held was not handled afterwards", held)
	}
	if missing != 0 {
		t.Errorf("%d messages handled by nobody", missing)
	}
}

// crashChild consumes as the group, acks the first messages and holds the
// next one until it is killed.
func crashChild(t *testing.T, spec string) {
	parts := strings.Split(spec, "|")
	var acks int
	fmt.Sscan(parts[3], &acks)
	cfg := testConfig([]string{parts[0]})
	cfg.CommitInterval = time.Hour // nothing committed before the kill
	tr, err := kafka.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tr.Subscriber(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(context.Background(), parts[1])
	if err != nil {
		t.Fatal(err)
	}
	handled := 0
	for m := range msgs {
		if handled == acks {
			fmt.Printf("holding %s\n", m.UUID)
			select {} // until SIGKILL
		}
		m.Ack()
		handled++
		fmt.Printf("handled %s\n", m.UUID)
	}
}
