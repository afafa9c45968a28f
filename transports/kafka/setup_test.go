package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/busline/transports/kafka"
)

// quiet discards logs; set BUSLINE_KAFKA_TEST_LOGS=1 to see them.
func quiet() *slog.Logger {
	if os.Getenv("BUSLINE_KAFKA_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newCluster starts an in-process Kafka cluster (kfake, the real protocol
// over TCP on loopback) closed at the end of the test.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	base := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// brokers returns the brokers under test: BUSLINE_KAFKA_BROKERS (comma
// separated) for a real Kafka, else those of a new kfake cluster.
func brokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv("BUSLINE_KAFKA_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	return newCluster(t).ListenAddrs()
}

// testConfig is the configuration tests use: fast group timings.
func testConfig(addrs []string) kafka.Config {
	return kafka.Config{
		Brokers:           addrs,
		Logger:            quiet(),
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond,
		CommitInterval:    200 * time.Millisecond,
	}
}

// open returns a transport on cfg, closed at the end of the test.
func open(t testing.TB, cfg kafka.Config) *kafka.Transport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := kafka.New(ctx, cfg)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}
