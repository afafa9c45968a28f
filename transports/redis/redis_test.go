package redis_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/transports/transporttest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// redisAddr is the shared Redis server the tests use.
func redisAddr() string {
	if a := os.Getenv("BUSLINE_REDIS_ADDR"); a != "" {
		return a
	}
	return redis.DefaultAddr
}

// needRedis fails the test when the shared Redis is unreachable, or skips it
// under -short.
func needRedis(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", redisAddr(), 2*time.Second)
	if err != nil {
		if testing.Short() {
			t.Skipf("no Redis at %s (-short)", redisAddr())
		}
		t.Fatalf("no Redis at %s: %v; start one with `make brokers` (or apt-get install redis-server && redis-server --daemonize yes), or set BUSLINE_REDIS_ADDR", redisAddr(), err)
	}
	_ = c.Close()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open returns a transport on the shared Redis, closed at the end of t.
func open(t *testing.T, cfg redis.Config) *redis.Transport {
	t.Helper()
	needRedis(t)
	if cfg.Addr == "" && cfg.URL == "" {
		cfg.Addr = redisAddr()
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := redis.New(ctx, cfg)
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// rawClient returns a plain go-redis client on addr, closed at the end of t.
func rawClient(t *testing.T, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniq returns a name unique to this run.
func uniq(prefix string) string { return prefix + "-" + uuid.NewString()[:8] }

func TestConformance(t *testing.T) {
	needRedis(t)
	transporttest.Run(t, transporttest.Harness{
		Kind: redis.Kind,
		Params: transports.OpenParams{
			Service: "conformance",
			Logger:  quietLogger(),
			Decode: func(into any) error {
				into.(*redis.Config).Addr = redisAddr()
				return nil
			},
		},
		New: func(t *testing.T) transports.Transport {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// A one-worker subscription redelivers a nacked entry before any
			// later one, after nack_delay doubling to nack_delay_max (100ms
			// to 5s by default). Watermill's TestContinueAfterErrors nacks
			// one message 300 times in a row: short delays keep it at ~30s.
			// A modest size limit keeps the size cases fast.
			tr, err := redis.New(ctx, redis.Config{Addr: redisAddr(), Logger: quietLogger(), Service: "conformance",
				NackDelay: 10 * time.Millisecond, NackDelayMax: 100 * time.Millisecond, MaxMessageBytes: 256 << 10})
			if err != nil {
				t.Fatalf("redis.New: %v", err)
			}
			return tr
		},
		Universal: tests.Features{
			ConsumerGroups:                      true,
			GuaranteedOrderWithSingleSubscriber: true,
			Persistent:                          true,
		},
	})
}
