package middleware_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/memory"
	"github.com/busline/busline/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// handle runs h over a fresh message with ctx and returns its error.
func handle(ctx context.Context, h message.HandlerFunc, md map[string]string) (*message.Message, error) {
	msg := message.NewMessage("m-1", []byte(`{"n":1}`))
	for k, v := range md {
		msg.Metadata.Set(k, v)
	}
	msg.SetContext(ctx)
	_, err := h(msg)
	return msg, err
}

var fast = middleware.RetryPolicy{Attempts: 3, Backoff: middleware.Backoff{Initial: time.Millisecond, Max: time.Millisecond}}

func TestRetry(t *testing.T) {
	t.Parallel()
	t.Run("TransientThenSuccess", func(t *testing.T) {
		var attempts []int
		h := middleware.Retry(fast)(func(msg *message.Message) ([]*message.Message, error) {
			n, _ := middleware.Attempt(msg.Context())
			attempts = append(attempts, n)
			if len(attempts) < 3 {
				return nil, errors.New("transient")
			}
			return nil, nil
		})
		msg, err := handle(context.Background(), h, nil)
		if err != nil || len(attempts) != 3 || attempts[0] != 1 || attempts[2] != 3 {
			t.Fatalf("err %v, attempts %v; want nil and [1 2 3]", err, attempts)
		}
		if got := msg.Metadata.Get(wire.MetaAttempts); got != "2" {
			t.Errorf("%s = %q, want 2 failed attempts", wire.MetaAttempts, got)
		}
	})
	t.Run("CountsEarlierFailures", func(t *testing.T) {
		var first int
		h := middleware.Retry(fast)(func(msg *message.Message) ([]*message.Message, error) {
			first, _ = middleware.Attempt(msg.Context())
			return nil, nil
		})
		if _, err := handle(context.Background(), h, map[string]string{wire.MetaAttempts: "4"}); err != nil {
			t.Fatal(err)
		}
		if first != 5 {
			t.Errorf("attempt %d after 4 recorded failures, want 5", first)
		}
	})
	t.Run("PermanentNotRetried", func(t *testing.T) {
		calls := 0
		h := middleware.Retry(fast)(func(*message.Message) ([]*message.Message, error) {
			calls++
			return nil, middleware.Permanent(errors.New("bad input"))
		})
		if _, err := handle(context.Background(), h, nil); !middleware.IsPermanent(err) || calls != 1 {
			t.Errorf("err %v after %d calls, want the permanent error after 1", err, calls)
		}
	})
	t.Run("CancelledNotRetried", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		h := middleware.Retry(fast)(func(*message.Message) ([]*message.Message, error) {
			calls++
			cancel()
			return nil, context.Canceled
		})
		msg, err := handle(ctx, h, nil)
		if calls != 1 || !errors.Is(err, context.Canceled) || msg.Metadata.Get(wire.MetaAttempts) != "" {
			t.Errorf("%d calls, err %v, attempts %q: want 1 call, context.Canceled, no failure recorded", calls, err, msg.Metadata.Get(wire.MetaAttempts))
		}
	})
	t.Run("MaxElapsed", func(t *testing.T) {
		calls := 0
		p := middleware.RetryPolicy{Attempts: 100, Backoff: middleware.Backoff{Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, MaxElapsed: 50 * time.Millisecond}}
		h := middleware.Retry(p)(func(*message.Message) ([]*message.Message, error) {
			calls++
			return nil, errors.New("down")
		})
		if _, err := handle(context.Background(), h, nil); err == nil || calls > 4 {
			t.Errorf("%d calls, err %v: MaxElapsed 50ms with 20ms waits allows at most 3 or 4", calls, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := middleware.RetryPolicy{Backoff: middleware.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}}
	p.SetDefaults()
	for range 20 {
		waits := p.Backoff.NewBackOff()
		for n := 1; n <= 10; n++ {
			want := min(100*time.Millisecond<<(n-1), time.Second)
			if got := waits.NextBackOff(); got < want*8/10 || got > want*12/10+1 {
				t.Fatalf("wait %d = %v, want %v ± 20%%", n, got, want)
			}
		}
	}
	err := (middleware.RetryPolicy{Attempts: 0, Backoff: middleware.Backoff{Initial: time.Second, Multiplier: 0.5, Max: time.Millisecond, Jitter: 2}}).Validate()
	for _, want := range []string{
		"attempts: must be >= 1 (1 means no immediate retry), got 0",
		"backoff.max: must be >= backoff.initial (1s), got 1ms",
		"backoff.multiplier: must be a number >= 1, got 0.5",
		"backoff.jitter: must be from 0 to 1 (0 means no jitter), got 2",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q among the problems", err, want)
		}
	}
	var pe *middleware.PolicyError
	if !errors.As(err, &pe) || pe.Field != "attempts" {
		t.Errorf("Validate's first problem = %#v, want a *PolicyError for attempts", pe)
	}
	if err := middleware.ValidateDelays([]time.Duration{time.Second, 0}); err == nil || err.Error() != "delays[1]: must be > 0, got 0s (an empty list, delays: [], means no delayed redelivery)" {
		t.Errorf("ValidateDelays = %v", err)
	}
}

// TestBackoffDefaults checks the one rule for zero fields: the zero Backoff
// is the default one, and in any other only the fields whose zero is not
// valid take defaults, so a zero Jitter means none.
func TestBackoffDefaults(t *testing.T) {
	t.Parallel()
	var zero middleware.Backoff
	zero.SetDefaults()
	if zero != middleware.DefaultBackoff() {
		t.Errorf("the zero Backoff = %+v, want DefaultBackoff %+v", zero, middleware.DefaultBackoff())
	}
	b := middleware.Backoff{Initial: 10 * time.Second}
	b.SetDefaults()
	if want := (middleware.Backoff{Initial: 10 * time.Second, Max: 10 * time.Second, Multiplier: 2}); b != want {
		t.Errorf("Backoff{Initial: 10s} = %+v, want %+v (no jitter)", b, want)
	}
}

func TestRecoverer(t *testing.T) {
	t.Parallel()
	h := middleware.Recoverer(func(*message.Message) ([]*message.Message, error) { panic("boom") })
	_, err := handle(context.Background(), h, nil)
	var pe *middleware.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || !strings.Contains(pe.Stack, "TestRecoverer") {
		t.Fatalf("err = %v, want a PanicError with value boom and the stack", err)
	}
	if middleware.Reason(err) != wire.ReasonPanic {
		t.Errorf("Reason = %q, want panic", middleware.Reason(err))
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	h := middleware.Timeout(20 * time.Millisecond)(func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done()
		return nil, msg.Context().Err()
	})
	start := time.Now()
	msg, err := handle(context.Background(), h, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v, want DeadlineExceeded after about 20ms", err, time.Since(start))
	}
	if msg.Context().Err() != nil {
		t.Error("the message's own context was left cancelled after the attempt")
	}
	if middleware.Reason(err) != wire.ReasonTimeout {
		t.Errorf("Reason = %q, want timeout", middleware.Reason(err))
	}
}

// lanesSetup returns Lanes over a memory transport with the lanes of group
// provisioned, and a function that takes the next message of a topic.
func lanesSetup(t *testing.T, delays ...time.Duration) (middleware.Lanes, func(topic string) *message.Message) {
	t.Helper()
	tr := memory.New(memory.Config{})
	t.Cleanup(func() { _ = tr.Close() })
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	l := middleware.Lanes{Publisher: pub, Topic: "orders", Group: "billing", Delays: delays}
	for _, topic := range []string{wire.RetryTopic("orders", "billing"), wire.PoisonTopic("orders", "billing")} {
		if err := tr.ProvisionGroup(context.Background(), topic, "billing"); err != nil {
			t.Fatal(err)
		}
	}
	next := func(topic string) *message.Message {
		if n := tr.Pending(topic, "billing"); n != 1 {
			t.Fatalf("%s holds %d messages, want 1", topic, n)
		}
		sub, _ := tr.Subscriber("billing")
		defer sub.Close()
		ch, err := sub.Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		m := <-ch
		m.Ack()
		return m
	}
	return l, next
}

func TestLanes(t *testing.T) {
	t.Parallel()
	failing := func(err error) message.HandlerFunc {
		return func(*message.Message) ([]*message.Message, error) { return nil, err }
	}
	t.Run("FirstFailureToTierOne", func(t *testing.T) {
		l, next := lanesSetup(t, time.Minute, time.Hour)
		before := time.Now()
		if _, err := handle(context.Background(), l.Middleware(failing(errors.New("db down"))), map[string]string{"ce_type": "orders.placed"}); err != nil {
			t.Fatalf("Lanes returned %v, want nil: the message moved to a lane and is acked", err)
		}
		m := next(wire.RetryTopic("orders", "billing"))
		f, err := wire.ReadFailure(m.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		if f.Tier != 1 || f.Due.Before(before.Add(time.Minute)) || f.Error != "db down" || f.Group != "billing" || f.Topic != "orders" || f.Reason != wire.ReasonError {
			t.Errorf("failure record %+v", f)
		}
		if m.Metadata.Get("ce_type") != "orders.placed" || string(m.Payload) != `{"n":1}` {
			t.Errorf("original metadata or payload lost: %v %q", m.Metadata, m.Payload)
		}
	})
	t.Run("LastTierToPoison", func(t *testing.T) {
		l, next := lanesSetup(t, time.Minute, time.Hour)
		md := map[string]string{wire.MetaTier: "2", wire.MetaAttempts: "6"}
		if _, err := handle(context.Background(), l.Middleware(failing(errors.New("still down"))), md); err != nil {
			t.Fatal(err)
		}
		f, _ := wire.ReadFailure(next(wire.PoisonTopic("orders", "billing")).Metadata)
		if f.Tier != 0 || !f.Due.IsZero() || f.Attempts != 6 {
			t.Errorf("poison record %+v, want no tier or due, 6 attempts", f)
		}
	})
	t.Run("PermanentToPoison", func(t *testing.T) {
		l, next := lanesSetup(t, time.Minute)
		if _, err := handle(context.Background(), l.Middleware(failing(middleware.Permanent(errors.New("invalid")))), nil); err != nil {
			t.Fatal(err)
		}
		if f, _ := wire.ReadFailure(next(wire.PoisonTopic("orders", "billing")).Metadata); f.Reason != wire.ReasonPermanent {
			t.Errorf("reason %q, want permanent", f.Reason)
		}
	})
	t.Run("PublishFailureKeepsMessage", func(t *testing.T) {
		l, _ := lanesSetup(t, time.Minute)
		_ = l.Publisher.Close()
		_, err := handle(context.Background(), l.Middleware(failing(errors.New("db down"))), nil)
		if err == nil || !strings.Contains(err.Error(), "stays for redelivery") {
			t.Errorf("err = %v, want the handler's error: the message must be nacked, not dropped", err)
		}
	})
	t.Run("StoppingIsNotAFailure", func(t *testing.T) {
		l, _ := lanesSetup(t, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := handle(ctx, l.Middleware(failing(context.Canceled)), nil); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled passed on", err)
		}
	})
}

func TestWaitDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	delays := []time.Duration{time.Second, time.Minute}
	md := func(tier string, due time.Time) message.Metadata {
		return message.Metadata{wire.MetaTier: tier, wire.MetaDue: due.Format(time.RFC3339Nano)}
	}
	for _, c := range []struct {
		name string
		md   message.Metadata
		want time.Duration
	}{
		{"UntilDue", md("2", now.Add(30*time.Second)), 30 * time.Second},
		{"SkewCappedByTier", md("1", now.Add(time.Hour)), time.Second},
		{"AlreadyDue", md("1", now.Add(-time.Second)), 0},
		{"TierNoLongerConfigured", md("3", now.Add(time.Hour)), 0},
		{"Replay", md("0", now.Add(time.Hour)), 0},
		{"NoDueTime", message.Metadata{wire.MetaTier: "1"}, 0},
		{"MalformedDue", message.Metadata{wire.MetaTier: "1", wire.MetaDue: "soon"}, 0},
	} {
		if got := middleware.WaitDue(c.md, delays, now); got != c.want {
			t.Errorf("%s: WaitDue = %v, want %v", c.name, got, c.want)
		}
	}
}
