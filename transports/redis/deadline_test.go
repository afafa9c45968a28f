package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/internal/faultproxy"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/redis"
)

// margin is how far past its deadline the package documentation lets
// Publish and PublishDelayed return.
const margin = 100 * time.Millisecond

// cut is a transport that reaches a private redis-server through a
// faultproxy, and a client that reaches the server directly.
type cut struct {
	tr    *redis.Transport
	px    *faultproxy.Proxy
	pub   message.Publisher
	raw   *goredis.Client
	topic string
}

// setupCut returns a transport behind a proxy, with its connections
// already open (one Publish and one PublishDelayed went through).
func setupCut(t *testing.T) *cut {
	t.Helper()
	srv := startServer(t)
	px := faultproxy.New(t, srv.addr)
	c := &cut{tr: open(t, redis.Config{Addr: px.Addr()}), px: px, raw: rawClient(t, srv.addr), topic: uniq("cut")}
	c.pub, _ = c.tr.Publisher()
	if err := c.pub.Publish(c.topic, message.NewMessage(uniq("warm"), []byte("x"))); err != nil {
		t.Fatal(err)
	}
	if err := c.tr.PublishDelayed(context.Background(), c.topic, time.Hour, message.NewMessage(uniq("warm"), []byte("x"))); err != nil {
		t.Fatal(err)
	}
	return c
}

// publish publishes one message with id, bounded by a context of deadline
// d, delayed by an hour when delayed, and returns how long it took and its
// error.
func (c *cut) publish(id string, d time.Duration, delayed bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msg := message.NewMessage(id, []byte("x"))
	msg.SetContext(ctx)
	start := time.Now()
	var err error
	if delayed {
		err = c.tr.PublishDelayed(ctx, c.topic, time.Hour, msg)
	} else {
		err = c.pub.Publish(c.topic, msg)
	}
	return time.Since(start), err
}

// stored reports whether the message id is in the topic's stream or its
// delayed set, read directly from the server.
func (c *cut) stored(t *testing.T, id string) bool {
	t.Helper()
	ctx := context.Background()
	entries, err := c.raw.XRange(ctx, c.tr.Stream(c.topic), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Values[redis.FieldUUID] == id {
			return true
		}
	}
	members, err := c.raw.ZRange(ctx, c.tr.DelayedKey(c.topic), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if strings.HasPrefix(m, fmt.Sprintf("%d:%s", len(id), id)) {
			return true
		}
	}
	return false
}

// TestPublishDeadline: with Redis unreachable, Publish and PublishDelayed
// return by the deadline of their context plus the documented margin.
// Refused connections: nothing was sent, and the error says so by not
// wrapping ErrMaybeSent. Bytes dropped: the command was written and never
// answered, so the error wraps ErrMaybeSent and the deadline.
func TestPublishDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 2 * time.Second
	for _, delayed := range []bool{false, true} {
		for _, mode := range []faultproxy.Mode{faultproxy.Refuse, faultproxy.Drop} {
			name := map[bool]string{false: "Publish", true: "PublishDelayed"}[delayed] + "/" + map[faultproxy.Mode]string{faultproxy.Refuse: "Refuse", faultproxy.Drop: "Drop"}[mode]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := setupCut(t)
				c.px.Set(mode)
				id := uniq("cut")
				took, err := c.publish(id, deadline, delayed)
				t.Logf("%s: returned after %v: %v", name, took.Round(time.Millisecond), err)
				if err == nil {
					t.Fatal("publish succeeded with Redis cut off")
				}
				if took > deadline+margin {
					t.Errorf("returned %v after the call, past its deadline of %v plus the margin of %v", took.Round(time.Millisecond), deadline, margin)
				}
				switch mode {
				case faultproxy.Refuse:
					if errors.Is(err, transports.ErrMaybeSent) {
						t.Errorf("error %v wraps ErrMaybeSent, but no connection could be made: nothing was sent", err)
					}
					c.px.Set(faultproxy.Pass)
					if c.stored(t, id) {
						t.Errorf("message %s is stored, but its publish said nothing was sent", id)
					}
				case faultproxy.Drop:
					if !errors.Is(err, transports.ErrMaybeSent) || !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("error %v: want one that wraps ErrMaybeSent and context.DeadlineExceeded (written, not answered by the deadline)", err)
					}
				}
			})
		}
	}
}

// TestPublishDeadlineWhileQueued: a publish waiting behind a pipeline that
// Redis does not answer returns at its own deadline, and since it was never
// sent its error does not wrap ErrMaybeSent, and it is never stored.
func TestPublishDeadlineWhileQueued(t *testing.T) {
	t.Parallel()
	c := setupCut(t)
	pipelines := &pipelineCounter{}
	c.tr.Client().AddHook(pipelines)
	c.px.Set(faultproxy.Drop)
	first, second := uniq("first"), uniq("second")
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.publish(first, 2*time.Second, false)
		firstErr <- err
	}()
	waitFor(t, 5*time.Second, "the first publish's pipeline to be sent", func() bool { return pipelines.pipelines.Load() > 0 })
	const deadline = 500 * time.Millisecond
	took, err := c.publish(second, deadline, false)
	t.Logf("queued publish returned after %v: %v", took.Round(time.Millisecond), err)
	if took > deadline+margin {
		t.Errorf("queued publish returned after %v, past its deadline %v plus %v", took.Round(time.Millisecond), deadline, margin)
	}
	if err == nil || errors.Is(err, transports.ErrMaybeSent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued publish = %v, want the deadline without ErrMaybeSent: it was never sent", err)
	}
	if err := <-firstErr; !errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("first publish = %v, want ErrMaybeSent", err)
	}
	c.px.Set(faultproxy.Pass)
	// The first publish was written: its bytes reach Redis now.
	waitFor(t, 10*time.Second, "the first message, written before the link dropped", func() bool { return c.stored(t, first) })
	if c.stored(t, second) {
		t.Errorf("the queued message is stored, but its publish said it was never sent")
	}
}

// TestPublishDeadlineNeighbours: concurrent publishes share pipelines; those
// with a short deadline return by it, and their failure fails none of the
// publishes with a long deadline sharing their pipeline, which succeed once
// Redis answers again. A short one whose error does not wrap ErrMaybeSent
// is not stored.
func TestPublishDeadlineNeighbours(t *testing.T) {
	t.Parallel()
	c := setupCut(t)
	c.px.Set(faultproxy.Drop)
	const n, short, long = 32, 300 * time.Millisecond, 10 * time.Second
	type result struct {
		id   string
		d    time.Duration
		err  error
		took time.Duration
	}
	results := make([]result, n)
	var shorts, longs sync.WaitGroup
	for i := range n {
		d, wg := long, &longs
		if i%2 == 1 {
			d, wg = short, &shorts
		}
		results[i] = result{id: fmt.Sprintf("%s-%d", c.topic, i), d: d}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].took, results[i].err = c.publish(results[i].id, d, false)
		}()
	}
	// Redis stays silent until every short publish returned (or 5s).
	shortsDone := make(chan struct{})
	go func() { shorts.Wait(); close(shortsDone) }()
	select {
	case <-shortsDone:
	case <-time.After(5 * time.Second):
	}
	c.px.Set(faultproxy.Pass)
	longs.Wait()
	<-shortsDone
	maybe, unsent := 0, 0
	var slowest time.Duration
	for _, r := range results {
		if r.d == short {
			slowest = max(slowest, r.took)
		}
		switch {
		case r.d == long && r.err != nil:
			t.Errorf("publish %s with a %v deadline failed next to short ones: %v", r.id, r.d, r.err)
		case r.d == short && r.took > short+margin:
			t.Errorf("publish %s returned after %v, past its deadline %v plus %v: %v", r.id, r.took.Round(time.Millisecond), short, margin, r.err)
		case r.d == short && r.err == nil:
			t.Errorf("publish %s with a %v deadline succeeded while Redis was silent", r.id, r.d)
		case r.d == short && errors.Is(r.err, transports.ErrMaybeSent):
			maybe++
		case r.d == short:
			unsent++
			if c.stored(t, r.id) {
				t.Errorf("message %s is stored, but its publish said nothing was sent: %v", r.id, r.err)
			}
		}
	}
	t.Logf("%d short publishes: %d may have been sent, %d were not; the slowest returned after %v", n/2, maybe, unsent, slowest.Round(time.Millisecond))
}
