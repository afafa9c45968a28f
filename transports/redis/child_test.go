package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/redis"
)

// childEnv, when set, makes the test binary run as a child consumer process
// (see runChild) instead of running tests. Its value is the mode.
const childEnv = "BUSLINE_REDIS_TEST_CHILD"

// runChild consumes CHILD_TOPIC as CHILD_GROUP on BUSLINE_REDIS_ADDR, until
// killed. Mode "ordered" is runOrderedChild, mode "dialfail"
// runDialFailChild. Mode "hang" prints "handling <uuid>" for the first message and
// never acks it; mode "ack" prints "ready" once subscribed, then
// "got <uuid>" for every message, which it acks.
func runChild() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := redis.Config{Addr: redisAddr(), Logger: quietLogger()}
	mode := os.Getenv(childEnv)
	if mode == "dialfail" {
		return runDialFailChild(ctx)
	}
	tr, err := redis.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mode == "ordered" {
		return runOrderedChild(tr)
	}
	sub, err := tr.Subscriber(os.Getenv("CHILD_GROUP"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	msgs, err := sub.Subscribe(context.Background(), os.Getenv("CHILD_TOPIC"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch mode {
	case "hang":
		m := <-msgs
		fmt.Printf("handling %s\n", m.UUID)
		select {} // the handler never finishes: the parent kills this process
	case "ack":
		fmt.Println("ready")
		for m := range msgs {
			fmt.Printf("got %s\n", m.UUID)
			m.Ack()
		}
	}
	return 0
}

// runOrderedChild runs a bus whose group CHILD_GROUP handles the order
// events of CHILD_TOPIC in an ordered subscription, printing
// "handled <seq>" in each handler call, until killed.
func runOrderedChild(tr *redis.Transport) int {
	b, err := bus.New(tr, bus.Config{Service: "redistest", Logger: quietLogger(), Topics: map[string]string{order{}.EventName(): os.Getenv("CHILD_TOPIC")}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = bus.Subscribe(b, os.Getenv("CHILD_GROUP"), func(_ context.Context, o order) error {
		fmt.Printf("handled %d\n", o.Seq)
		return nil
	}, bus.WithOrdered())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := b.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is a consumer process started by startChild.
type child struct {
	cmd   *exec.Cmd
	lines chan string // stdout, line by line; closed at EOF
}

// startChild runs this test binary as a child consumer in mode (see
// runChild) of topic for group, killed at the end of t.
func startChild(t *testing.T, mode, topic, group string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode, "CHILD_TOPIC="+topic, "CHILD_GROUP="+group, "BUSLINE_REDIS_ADDR="+redisAddr()), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
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
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// next returns the child's next line with prefix (the rest of it), skipping
// others, or fails t after d.
func (c *child) next(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	rest, err := c.nextLine(prefix, d)
	if err != nil {
		t.Fatal(err)
	}
	return rest
}

// nextLine is next returning an error.
func (c *child) nextLine(prefix string, d time.Duration) (string, error) {
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("child exited before printing %q", prefix)
			}
			if rest, found := strings.CutPrefix(l, prefix); found {
				return rest, nil
			}
		case <-timeout:
			return "", fmt.Errorf("child printed no %q within %v", prefix, d)
		}
	}
}

// kill sends SIGKILL to the child and waits for it. It returns the lines
// the child printed before it died that were not read yet.
func (c *child) kill() []string {
	if c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return nil
	}
	_ = c.cmd.Process.Kill()
	var rest []string
	for l := range c.lines { // until EOF: Wait closes the pipe
		rest = append(rest, l)
	}
	_ = c.cmd.Wait()
	return rest
}

// runDialFailChild connects to a closed port with a JSON logger on stdout,
// prints New's error to stdout, and writes nothing to stderr itself.
func runDialFailChild(ctx context.Context) int {
	_, err := redis.New(ctx, redis.Config{Addr: "127.0.0.1:1", DialTimeout: time.Second, Logger: slog.New(slog.NewJSONHandler(os.Stdout, nil))})
	fmt.Printf("error: %v\n", err)
	return 0
}
