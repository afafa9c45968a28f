package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/busline/busline/transports/redis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunAgainstRedis(t *testing.T) {
	addr := os.Getenv("BUSLINE_REDIS_ADDR")
	if addr == "" {
		addr = redis.DefaultAddr
	}
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		if testing.Short() {
			t.Skipf("no Redis at %s (-short)", addr)
		}
		t.Fatalf("no Redis at %s: %v; start one with `make brokers` or set BUSLINE_REDIS_ADDR", addr, err)
	} else {
		_ = c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, addr); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	for _, want := range []string{
		"billing: charged 1000 cents for order-1 (from checkout)",
		"billing: charged 2000 cents for order-2 (from checkout)",
		"billing: charged 3000 cents for order-3 (from checkout)",
		"all orders billed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
