package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	_ "github.com/busline/busline/transports/all"
)

// busctlPath is the busctl binary the tests run, built by TestMain.
var busctlPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "busctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "busctl tests:", err)
		os.Exit(1)
	}
	busctlPath = filepath.Join(dir, "busctl")
	args := []string{"build", "-o", busctlPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "busctl tests: go build: %v\n%s", err, out)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m,
		// go-metrics, which Sarama uses, starts one global ticker goroutine.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		goleak.Cleanup(func(code int) { _ = os.RemoveAll(dir); os.Exit(code) }))
}

// result is how a busctl run ended.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// busctl runs the binary with args and stdin, for at most two minutes.
func busctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, busctlPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run busctl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustRun runs busctl and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := busctl(t, "", args...)
	if r.code != 0 {
		t.Fatalf("busctl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// expectExit runs busctl and fails the test unless it exits with code and
// prints want (if not empty) on stderr.
func expectExit(t *testing.T, code int, want string, args ...string) result {
	t.Helper()
	r := busctl(t, "", args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("busctl %s: want exit %d and stderr with %q, got %s", strings.Join(args, " "), code, want, r)
	}
	return r
}

func uniqueID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeFile writes a file in the test's temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// broker is a transport under test: its kind and its YAML section.
type broker struct {
	kind    string
	section string // the transport.<kind> mapping, in flow style
}

// brokers returns the transports the end-to-end tests run against:
// RabbitMQ and Redis on loopback (BUSLINE_RABBITMQ_URL, BUSLINE_REDIS_ADDR)
// and Kafka in-process (kfake), or BUSLINE_KAFKA_BROKERS.
func brokers(t *testing.T) []broker {
	t.Helper()
	rabbitURL := envOr("BUSLINE_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
	redisAddr := envOr("BUSLINE_REDIS_ADDR", "127.0.0.1:6379")
	var out []broker
	if u, err := url.Parse(rabbitURL); err != nil || !reachable(t, "RabbitMQ", u.Host, "BUSLINE_RABBITMQ_URL") {
		t.Log("RabbitMQ skipped (-short)")
	} else {
		out = append(out, broker{"rabbitmq", fmt.Sprintf("{url: %q}", rabbitURL)})
	}
	if reachable(t, "Redis", redisAddr, "BUSLINE_REDIS_ADDR") {
		out = append(out, broker{"redis", fmt.Sprintf("{addr: %q}", redisAddr)})
	} else {
		t.Log("Redis skipped (-short)")
	}
	kafkaBrokers := os.Getenv("BUSLINE_KAFKA_BROKERS")
	if kafkaBrokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
		if err != nil {
			t.Fatalf("start kfake: %v", err)
		}
		t.Cleanup(c.Close)
		kafkaBrokers = strings.Join(c.ListenAddrs(), ",")
	}
	list, _ := json.Marshal(strings.Split(kafkaBrokers, ","))
	out = append(out, broker{"kafka", fmt.Sprintf("{brokers: %s, session_timeout: 6s, heartbeat_interval: 500ms, commit_interval: 200ms}", list)})
	return out
}

// reachable reports whether addr accepts TCP connections; if it does not,
// the test fails, or under -short reachable returns false.
func reachable(t *testing.T, name, addr, env string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return true
	}
	if testing.Short() {
		return false
	}
	t.Fatalf("no %s at %s (%v): start the brokers with `make brokers` (scripts/brokers.sh), or set %s", name, addr, err, env)
	return false
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// writeConfig writes a busline config for b in which event orders.placed is
// published on topic, failures go to the poison lane at once, and groups
// billing and shipping are listed.
func writeConfig(t *testing.T, b broker, topic string) string {
	t.Helper()
	return writeFile(t, "busline.yaml", fmt.Sprintf(`service: busctl-test
shutdown_grace: 5s
transport:
  kind: %s
  %s: %s
retry:
  attempts: 1
  delays: []
subscriptions:
  billing: {}
  shipping: {}
topics:
  orders.placed: %s
`, b.kind, b.kind, b.section, topic))
}

// orderPlaced is the event the tests' services handle.
type orderPlaced struct {
	ID string `json:"id"`
}

func (orderPlaced) EventName() string { return "orders.placed" }

// service is a bus opened from a config file, as a service would, with
// handlers that report what they handle.
type service struct {
	bus  *bus.Bus
	stop func()
}

// startService opens a bus from path, subscribes billing and shipping with
// the given handlers and runs it until the test ends or stop is called.
func startService(t *testing.T, path string, billing, shipping bus.Handler[orderPlaced]) *service {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := cfg.Open(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open the service's bus: %v", err)
	}
	if err := bus.Subscribe(b, "billing", billing); err != nil {
		t.Fatal(err)
	}
	if err := bus.Subscribe(b, "shipping", shipping); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	s := &service{bus: b}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		stopRun()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service bus: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the service's bus did not stop within 30s")
		}
		_ = b.Close(context.Background())
	}
	t.Cleanup(s.stop)
	return s
}

// receive takes n values from ch, failing the test after timeout.
func receive[T any](t *testing.T, ch <-chan T, n int, timeout time.Duration, what string) []T {
	t.Helper()
	deadline := time.After(timeout)
	var got []T
	for len(got) < n {
		select {
		case v := <-ch:
			got = append(got, v)
		case <-deadline:
			t.Fatalf("%s: got %d of %d within %s: %v", what, len(got), n, timeout, got)
		}
	}
	return got
}
