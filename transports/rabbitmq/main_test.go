package rabbitmq_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// runner stops the private broker node after the tests, before goleak
// looks for leaked goroutines.
type runner struct{ m *testing.M }

func (r runner) Run() int {
	code := r.m.Run()
	stopPrivateNode()
	return code
}

func TestMain(m *testing.M) {
	flag.Parse()
	raiseParallel()
	goleak.VerifyTestMain(runner{m})
}

// minParallel is the least number of tests the package runs in parallel
// unless -parallel says otherwise. -parallel's default is GOMAXPROCS, 2 on
// the test machines, and two of the tests spend 2.5 minutes waiting for a
// node's consumer_timeout (RabbitMQ checks it once a minute), using no CPU:
// with 2, they held both slots and the conformance suite's cases queued
// behind them. 4 lets them wait while two others run, as many as before.
const minParallel = 4

func raiseParallel() {
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	f := flag.Lookup("test.parallel")
	if explicit || f == nil {
		return
	}
	if n, err := strconv.Atoi(f.Value.String()); err == nil && n < minParallel {
		_ = f.Value.Set(strconv.Itoa(minParallel))
	}
}

// brokerURL is the shared broker the tests use.
func brokerURL() string {
	if u := os.Getenv(rabbitmq.EnvURL); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// quietLogger discards the transport's logs, or shows them with -v when
// BUSLINE_TEST_LOG is set.
func quietLogger() *slog.Logger {
	if os.Getenv("BUSLINE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// requireBroker skips under -short and fails, saying how to start
// RabbitMQ, when the shared broker cannot be reached.
func requireBroker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs RabbitMQ; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := rabbitmq.New(ctx, rabbitmq.Config{URL: transports.SecretURL(brokerURL()), Logger: quietLogger()})
	if err != nil {
		t.Fatalf("RabbitMQ unreachable: %v\nstart it with `sudo apt-get install rabbitmq-server && sudo service rabbitmq-server start` or `bash scripts/brokers.sh`, or point %s at a running broker", err, rabbitmq.EnvURL)
	}
	_ = tr.Close()
}

// testQueueExpires lets the shared broker drop the tests' queues once idle.
const testQueueExpires = 10 * time.Minute

// newTransport returns a transport on the shared broker, closed at the end
// of the test.
func newTransport(t testing.TB, cfg rabbitmq.Config) *rabbitmq.Transport {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = transports.SecretURL(brokerURL())
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if cfg.QueueExpires == 0 {
		cfg.QueueExpires = testQueueExpires
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tr, err := rabbitmq.New(ctx, cfg)
	if err != nil {
		t.Fatalf("rabbitmq.New: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("close transport: %v", err)
		}
	})
	return tr
}
