package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	amqp "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports/rabbitmq"
)

// tailProcess is a busctl tail running in the background.
type tailProcess struct {
	cmd    *exec.Cmd
	group  string
	lines  chan string // stdout
	stderr lockedBuffer
	done   chan error
}

var tailingRE = regexp.MustCompile(`tailing topic \S+ as group (\S+)`)

// startTail starts busctl tail and returns once it consumes.
func startTail(t *testing.T, args ...string) *tailProcess {
	t.Helper()
	p := &tailProcess{cmd: exec.Command(busctlPath, append([]string{"tail"}, args...)...), lines: make(chan string, 100), done: make(chan error, 1)}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	ready := make(chan string, 1)
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			if m := tailingRE.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		<-stderrDone
		p.done <- p.cmd.Wait()
	}()
	select {
	case p.group = <-ready:
		return p
	case err := <-p.done:
		p.done <- err
		t.Fatalf("busctl tail ended before it consumed: %v\n%s", err, p.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("busctl tail did not start consuming within a minute")
	}
	return nil
}

// wait waits for tail to end and returns its exit code.
func (p *tailProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(time.Minute):
		t.Fatalf("busctl tail did not end within a minute")
		return -1
	}
}

// TestTail tails a topic in two ways (stopping after --count messages, and
// interrupted with SIGINT) while a real group consumes it, on every broker:
// both tails print what is published, the real group still gets every
// message, and the tails' groups are deleted.
func TestTail(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(strings.ToUpper(b.kind[:1])+b.kind[1:], func(t *testing.T) {
			t.Parallel()
			topic := "orders.placed." + uniqueID()
			path := writeConfig(t, b, topic)
			billed := make(chan string, 10)
			startService(t, path, func(_ context.Context, o orderPlaced) error { billed <- o.ID; return nil },
				func(context.Context, orderPlaced) error { return nil })

			counted := startTail(t, "--config", path, "--count", "2", "--json", topic)
			interrupted := startTail(t, "orders.placed", "--config", path) // an event name, mapped to topic
			// One key, so that Kafka keeps them in one partition, in order.
			for _, id := range []string{"o-1", "o-2"} {
				mustRun(t, "publish", "--config", path, "--event", "orders.placed", "--key", "customer-1", "--data", `{"id":"`+id+`"}`)
			}
			lines := receive(t, counted.lines, 2, time.Minute, "tail --json lines")
			for i, line := range lines {
				var m struct {
					Metadata map[string]string `json:"metadata"`
					Payload  json.RawMessage   `json:"payload"`
				}
				if err := json.Unmarshal([]byte(line), &m); err != nil || m.Metadata["ce_type"] != "orders.placed" ||
					m.Metadata["ce_source"] != "busctl-test" || string(m.Payload) != `{"id":"o-`+string(rune('1'+i))+`"}` {
					t.Errorf("tail --json line %d: %v %s", i, err, line)
				}
			}
			if code := counted.wait(t); code != 0 {
				t.Errorf("tail --count 2 exited %d: %s", code, counted.stderr.String())
			}

			var headers int
			for headers < 2 {
				line := receive(t, interrupted.lines, 1, time.Minute, "tail lines")[0]
				if strings.HasPrefix(line, "--- orders.placed ") {
					headers++
				}
			}
			if err := interrupted.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := interrupted.wait(t); code != 0 || !strings.Contains(interrupted.stderr.String(), "printed 2 messages") {
				t.Errorf("tail interrupted: exit %d\n%s", code, interrupted.stderr.String())
			}
			if got := receive(t, billed, 2, time.Minute, "billing"); len(got) != 2 {
				t.Errorf("billing got %v", got)
			}
			for _, p := range []*tailProcess{counted, interrupted} {
				if strings.Contains(p.stderr.String(), "could not delete") || groupExists(t, b, topic, p.group) {
					t.Errorf("tail group %s is still on topic %s: %s", p.group, topic, p.stderr.String())
				}
			}
		})
	}
}

// groupExists asks the broker whether group still exists on topic.
func groupExists(t *testing.T, b broker, topic, group string) bool {
	t.Helper()
	switch b.kind {
	case "rabbitmq":
		conn, err := amqp.Dial(envOr("BUSLINE_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclarePassive(rabbitmq.QueueName(topic, group), true, false, false, false, nil)
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = ch.Close()
		return true
	case "redis":
		c := goredis.NewClient(&goredis.Options{Addr: envOr("BUSLINE_REDIS_ADDR", "127.0.0.1:6379")})
		defer c.Close()
		groups, err := c.XInfoGroups(context.Background(), "busline:"+topic).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if g.Name == group {
				return true
			}
		}
		return false
	case "kafka":
		addrs := kafkaAddrs(t, b)
		sc := sarama.NewConfig()
		sc.Version = sarama.V2_8_0_0
		admin, err := sarama.NewClusterAdmin(addrs, sc)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			t.Fatal(err)
		}
		_, ok := groups[group]
		return ok
	}
	t.Fatalf("no group check for %s", b.kind)
	return false
}

// kafkaAddrs reads the broker list back from the section of b.
func kafkaAddrs(t *testing.T, b broker) []string {
	t.Helper()
	m := regexp.MustCompile(`brokers: (\[[^\]]*\])`).FindStringSubmatch(b.section)
	var addrs []string
	if m == nil || json.Unmarshal([]byte(m[1]), &addrs) != nil {
		t.Fatalf("no brokers in %s", b.section)
	}
	return addrs
}

// lockedBuffer is a strings.Builder safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTailUnknownTopic tails a topic nothing has used, on every broker: it
// is an error and the broker holds nothing more for it; with --create, tail
// waits on it.
func TestTailUnknownTopic(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(strings.ToUpper(b.kind[:1])+b.kind[1:], func(t *testing.T) {
			t.Parallel()
			topic := "orders.placed." + uniqueID()
			path := writeConfig(t, b, topic)
			before := brokerObjects(t, b, topic)
			expectExit(t, 1, "topic "+topic+" does not exist on the "+b.kind+" broker", "tail", "--config", path, topic)
			if after := brokerObjects(t, b, topic); !slices.Equal(before, after) {
				t.Errorf("tail of an unknown topic changed the broker:\nbefore %v\nafter  %v", before, after)
			}
			p := startTail(t, "--config", path, "--create", topic)
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := p.wait(t); code != 0 {
				t.Errorf("tail --create: exit %d\n%s", code, p.stderr.String())
			}
		})
	}
}
