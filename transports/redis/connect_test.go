package redis_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/redis"
)

const runningHint = "is redis-server running?"

// newErr returns New's error for cfg, failing t if New succeeds.
func newErr(t *testing.T, cfg redis.Config) string {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := redis.New(ctx, cfg)
	if err == nil {
		_ = tr.Close()
		t.Fatalf("New(%+v) succeeded", cfg)
	}
	return err.Error()
}

// New's error says what to check by the kind of failure: whether Redis
// runs for a refused or silent connection, the credentials for an
// authentication error, the TLS settings for a TLS error.
func TestConnectErrorsSayWhatToCheck(t *testing.T) {
	t.Parallel()
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		err := newErr(t, redis.Config{Addr: "127.0.0.1:1", DialTimeout: time.Second})
		if !strings.Contains(err, runningHint) || !strings.Contains(err, redis.EnvAddr) {
			t.Errorf("error %q does not ask whether redis-server runs and name %s", err, redis.EnvAddr)
		}
	})
	t.Run("Silent", func(t *testing.T) {
		t.Parallel()
		addr := fakeServer(t, "")
		err := newErr(t, redis.Config{Addr: addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
		if !strings.Contains(err, runningHint) {
			t.Errorf("error %q does not ask whether redis-server runs", err)
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		if err := rawClient(t, s.addr).ConfigSet(context.Background(), "requirepass", "right-one").Err(); err != nil {
			t.Fatal(err)
		}
		for _, cfg := range []redis.Config{
			{Addr: s.addr, Password: "wrong-one"},
			{Addr: s.addr},
			{URL: transports.SecretURL("redis://:wrong-one@" + s.addr + "/0")},
		} {
			err := newErr(t, cfg)
			t.Log(err)
			if strings.Contains(err, runningHint) || !strings.Contains(err, "username and password") {
				t.Errorf("error %q does not say to check the username and password", err)
			}
			if strings.Contains(err, "wrong-one") {
				t.Errorf("error %q shows the password", err)
			}
		}
	})
	t.Run("TLSToPlainServer", func(t *testing.T) {
		t.Parallel()
		addr := fakeServer(t, "-ERR unknown command\r\n")
		err := newErr(t, redis.Config{Addr: addr, DialTimeout: time.Second, TLS: redis.TLSConfig{Enabled: true, InsecureSkipVerify: true}})
		t.Log(err)
		if strings.Contains(err, runningHint) || !strings.Contains(err, "check the TLS settings") {
			t.Errorf("error %q does not say to check the TLS settings", err)
		}
	})
}

// fakeServer listens on a loopback port, closed at the end of t, and
// answers every connection with reply (never, if empty), then holds it
// open. It returns its address.
func fakeServer(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			if reply != "" {
				_, _ = c.Write([]byte(reply))
			}
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// The address defaults to $BUSLINE_REDIS_ADDR, and an address in the
// configuration wins over it.
func TestEnvAddr(t *testing.T) {
	needRedis(t)
	addr := redisAddr()
	t.Setenv(redis.EnvAddr, "127.0.0.1:1")
	err := newErr(t, redis.Config{DialTimeout: time.Second})
	if !strings.Contains(err, "127.0.0.1:1") {
		t.Errorf("with %s=127.0.0.1:1, New's error %q names another address", redis.EnvAddr, err)
	}
	for _, c := range []struct {
		env string
		cfg redis.Config
	}{
		{"127.0.0.1:1", redis.Config{Addr: addr}}, // the configured address wins
		{addr, redis.Config{}},
	} {
		t.Setenv(redis.EnvAddr, c.env)
		c.cfg.Logger = quietLogger()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tr, err := redis.New(ctx, c.cfg)
		cancel()
		if err != nil {
			t.Fatalf("New(%+v) with %s=%s: %v", c.cfg, redis.EnvAddr, c.env, err)
		}
		_ = tr.Close()
	}
}

// go-redis's own log of failed dials goes to the transport's logger, not
// to stderr (checked in a child process, whose stderr is all its own).
func TestGoRedisLogGoesToLogger(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=dialfail")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "error: redis transport: cannot reach Redis") {
		t.Fatalf("the child did not fail to connect:\n%s", &stdout)
	}
	if !strings.Contains(stdout.String(), `"level":"WARN","msg":"redis transport: go-redis reported a problem"`) || !strings.Contains(stdout.String(), "failed to dial") {
		t.Errorf("go-redis's dial failure is not in the transport's log:\n%s", &stdout)
	}
	if stderr.Len() > 0 {
		t.Errorf("the child wrote to stderr:\n%s", &stderr)
	}
}
