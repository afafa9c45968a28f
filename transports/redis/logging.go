package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis writes its own log (failed dials above all) to one process-wide
// logger, set by goredis.SetLogger; by default it prints to stderr. It has
// no logger per client, and it dials on goroutines of its own whose context
// carries nothing of the command that needed the connection. So:
//
//   - the first transport created in a process replaces go-redis's logger,
//     once, with goRedisLog; transports never set it again, so they do not
//     fight over it, and an application that wants go-redis's log
//     elsewhere calls goredis.SetLogger after creating its first transport;
//   - each transport's client has a dial hook (dialHook) that keeps the
//     transport's last dial error;
//   - goRedisLog sends a message that ends with a live transport's last
//     dial error (go-redis's "failed to dial after N attempts: <error>") to
//     that transport's logger, with its secrets redacted, and any other
//     message to slog.Default(). Two transports that fail to dial the same
//     address with the same error get it on the logger of either.

var routeGoRedisLogOnce sync.Once

// routeGoRedisLog makes goRedisLog go-redis's logger, once per process.
func routeGoRedisLog() {
	routeGoRedisLogOnce.Do(func() { goredis.SetLogger(goRedisLog{}) })
}

// dialing holds the transports whose client is open, for goRedisLog.
var dialing sync.Map // *Transport → struct{}

// goRedisLog is go-redis's process-wide logger once a transport was
// created.
type goRedisLog struct{}

// Printf logs a go-redis message as a warning, to the logger of the
// transport whose dial error it reports, or to slog.Default().
func (goRedisLog) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	var owner *Transport
	dialing.Range(func(k, _ any) bool {
		t := k.(*Transport)
		if last := t.lastDialErr.Load(); last != nil && strings.HasSuffix(msg, ": "+*last) {
			owner = t
			return false
		}
		return true
	})
	if owner == nil {
		slog.Default().LogAttrs(ctx, slog.LevelWarn, "redis transport: go-redis reported a problem", slog.String("message", msg))
		return
	}
	owner.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "redis transport: go-redis reported a problem",
		slog.String("server", owner.cfg.target()), slog.String("message", owner.redact(errors.New(msg)).Error()))
}

// dialHook keeps its transport's last dial error, for goRedisLog.
type dialHook struct{ t *Transport }

func (h dialHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			s := err.Error()
			h.t.lastDialErr.Store(&s)
		}
		return conn, err
	}
}

func (h dialHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h dialHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// lastDialError is the type of Transport.lastDialErr.
type lastDialError = atomic.Pointer[string]
