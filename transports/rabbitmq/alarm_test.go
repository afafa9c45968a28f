package rabbitmq_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// logRecorder collects what a text handler writes, for tests that wait for
// a log line. It is safe for concurrent use.
type logRecorder struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // signalled after each write
}

func newLogRecorder() *logRecorder { return &logRecorder{wrote: make(chan struct{}, 1)} }

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.buf.Write(p)
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// logger returns a debug-level logger that writes to l.
func (l *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// line returns the first logged line that holds every one of parts, or "".
func (l *logRecorder) line(parts ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.buf.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line
		}
	}
	return ""
}

// waitLine waits up to within for a line that holds every one of parts.
func (l *logRecorder) waitLine(t *testing.T, within time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.After(within)
	for {
		if line := l.line(parts...); line != "" {
			return line
		}
		select {
		case <-l.wrote:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no log line with %q within %v; logged:\n%s", parts, within, l.buf.String())
			return ""
		}
	}
}

// alarms returns the node's resource alarms, as rabbit_alarm lists them.
func (n *privateNode) alarms(t *testing.T) string {
	t.Helper()
	out, err := n.ctl("eval", "rabbit_alarm:get_alarms().")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// While a memory or disk alarm blocks publishing, Publish returns by its
// context's deadline with an error naming the alarm, a publisher to
// another topic is not held behind it, Health says the broker blocks the
// connection, the block and the unblock are logged, and publishing resumes
// once the alarm clears. Before, Publish waited for the alarm to clear
// whatever its context and publish_timeout said (30 s, 60 s, 6 min), and
// so did every other publisher, with nothing logged.
func TestResourceAlarmBoundsPublish(t *testing.T) {
	t.Parallel()
	n := ownPrivateNode(t, nodeOptions{})
	for _, alarm := range []struct {
		name, resource string
		raise, clear   []string
	}{
		{"Memory", "memory", []string{"set_vm_memory_high_watermark", "0.0000001"}, []string{"set_vm_memory_high_watermark", "0.4"}},
		{"Disk", "disk", []string{"set_disk_free_limit", "100000GB"}, []string{"set_disk_free_limit", "50MB"}},
	} {
		t.Run(alarm.name, func(t *testing.T) {
			logs := newLogRecorder()
			tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(n.url()), Logger: logs.logger(), PublishTimeout: 20 * time.Second})
			topic, group := ids("alarm." + alarm.resource)
			msgs := subscribe(t, tr, topic, group)
			pub, err := tr.Publisher()
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(topic, message.NewMessage("before", []byte("x"))); err != nil {
				t.Fatalf("publish before the alarm: %v", err)
			}
			receive(t, msgs, 10*time.Second).Ack()

			cleared := false
			clearAlarm := func() {
				if cleared {
					return
				}
				cleared = true
				if _, err := n.ctl(alarm.clear...); err != nil {
					t.Errorf("clear the alarm: %v", err)
				}
			}
			t.Cleanup(clearAlarm)
			if _, err := n.ctl(alarm.raise...); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(30 * time.Second); !strings.Contains(n.alarms(t), alarm.resource); time.Sleep(100 * time.Millisecond) { // polling the broker
				if time.Now().After(deadline) {
					t.Fatalf("no %s alarm 30s after rabbitmqctl %v: %s", alarm.resource, alarm.raise, n.alarms(t))
				}
			}

			const timeout = 2 * time.Second
			blocked := startPublish(pub, topic, timeout, message.NewMessage("during", []byte("x")))
			other, _ := ids("alarm.other")
			otherTopic := startPublish(pub, other, timeout/2, message.NewMessage("other", []byte("x")))
			took, returned, err := blocked.wait(t, 15*time.Second)
			otherTook, otherReturned, otherErr := otherTopic.wait(t, 15*time.Second)
			if !returned || !otherReturned {
				clearAlarm() // lets the blocked publishes return
				for _, p := range []struct {
					*pendingPublish
					returned bool
				}{{blocked, returned}, {otherTopic, otherReturned}} {
					if !p.returned {
						select {
						case <-p.done:
						case <-time.After(time.Minute):
						}
					}
				}
				t.FailNow()
			}
			t.Logf("Publish during the alarm took %v: %v", took, err)
			t.Logf("Publish to another topic took %v: %v", otherTook, otherErr)
			for _, e := range []error{err, otherErr} {
				if e == nil || !strings.Contains(e.Error(), alarm.resource) || !errors.Is(e, rabbitmq.ErrBlocked) {
					t.Errorf("Publish during the %s alarm = %v, want an error wrapping rabbitmq.ErrBlocked that names the alarm", alarm.resource, e)
				}
			}

			hctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			start := time.Now()
			herr := tr.Health(hctx)
			cancel()
			if herr == nil || !strings.Contains(herr.Error(), alarm.resource) || time.Since(start) > 3*time.Second+deadlineMargin {
				t.Errorf("Health during the %s alarm = %v after %v, want an error naming the alarm by the deadline", alarm.resource, herr, time.Since(start))
			}
			if line := logs.waitLine(t, 5*time.Second, "level=WARN", "blocked", alarm.resource); !strings.Contains(line, `role=publish`) {
				t.Errorf("blocked log line %q does not name the connection", line)
			}

			clearAlarm()
			logs.waitLine(t, 30*time.Second, "level=INFO", "unblocked")
			hctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			if err := tr.Health(hctx); err != nil {
				t.Errorf("Health after the alarm cleared: %v", err)
			}
			cancel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			after := message.NewMessage("after", []byte("x"))
			after.SetContext(ctx)
			if err := pub.Publish(topic, after); err != nil {
				t.Fatalf("Publish after the alarm cleared: %v", err)
			}
			for {
				m := receive(t, msgs, 10*time.Second)
				m.Ack()
				if m.UUID == "after" {
					break
				}
				if m.UUID != "during" {
					t.Errorf("received %q", m.UUID)
				}
			}
		})
	}
}
