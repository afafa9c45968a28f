package kafka_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/transporttest"
)

type laneEvent struct {
	Seq  int   `json:"seq"`
	Sent int64 `json:"sent"` // unix nanos
	Fail bool  `json:"fail"` // fails its first delivery: to the 30s lane
}

func (laneEvent) EventName() string { return "kafka.lane-test" }

// TestLaneDoesNotHoldRebalance: 100 messages wait in a 30s retry lane while
// a second instance of the group joins and leaves; the main topic's
// publish-to-handle latency stays low (p99 under 2s), because nothing
// waiting is held by a consumer and the lane is not in the main topic's
// consumer group.
func TestLaneDoesNotHoldRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 12s; skipped with -short")
	}
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic, group := unique("lanes"), unique("laners")
	newBus := func() *bus.Bus {
		b, err := bus.New(tr, bus.Config{Service: "kafka-test", Logger: quiet(), Topics: map[string]string{laneEvent{}.EventName(): topic}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		return b
	}
	var (
		mu         sync.Mutex
		failed     = map[int]bool{}
		redone     int
		latencies  []time.Duration
		stillFirst = true
	)
	handler := func(_ context.Context, e laneEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if e.Fail {
			if !failed[e.Seq] {
				failed[e.Seq] = true
				return errors.New("to the lane")
			}
			redone++
			return nil
		}
		if !stillFirst {
			latencies = append(latencies, time.Since(time.Unix(0, e.Sent)))
		}
		return nil
	}
	subscribe := func(b *bus.Bus) {
		err := bus.Subscribe(b, group, handler, bus.WithDelays(30*time.Second),
			bus.WithRetry(middleware.RetryPolicy{Attempts: 1}), bus.WithConcurrency(4))
		if err != nil {
			t.Fatal(err)
		}
	}
	first := newBus()
	subscribe(first)
	transporttest.Start(t, first)
	pub := newBus()
	ctx := context.Background()
	for i := range 100 {
		if err := bus.Publish(ctx, pub, laneEvent{Seq: i, Sent: time.Now().UnixNano(), Fail: true}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(failed)
		mu.Unlock()
		if n == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 100 lane events failed within 30s", n)
		}
		time.Sleep(20 * time.Millisecond) // polling a counter
	}
	mu.Lock()
	stillFirst = false
	mu.Unlock()

	var second *bus.Bus
	secondLeft := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	published := 0
	for seq := 100; time.Since(start) < 10*time.Second; seq++ {
		<-tick.C
		switch {
		case second == nil && time.Since(start) > 2*time.Second:
			second = newBus()
			subscribe(second)
			transporttest.Start(t, second)
		case second != nil && !secondLeft && time.Since(start) > 6*time.Second:
			if err := second.Close(ctx); err != nil {
				t.Fatal(err)
			}
			secondLeft = true
		}
		if err := bus.Publish(ctx, pub, laneEvent{Seq: seq, Sent: time.Now().UnixNano()}); err != nil {
			t.Fatal(err)
		}
		published++
	}
	wait := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(latencies)
		mu.Unlock()
		if n >= published || time.Now().After(wait) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a counter
	}
	mu.Lock()
	defer mu.Unlock()
	lat := slices.Clone(latencies)
	slices.Sort(lat)
	if len(lat) < published {
		t.Fatalf("%d of %d main-topic events handled", len(lat), published)
	}
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))].Round(time.Millisecond) }
	t.Logf("%d main-topic events while a second instance joined and left, 100 waiting in a 30s lane: latency p50 %v, p99 %v, max %v; %d lane events handled early",
		len(lat), p(0.5), p(0.99), lat[len(lat)-1].Round(time.Millisecond), redone)
	if p99 := p(0.99); p99 >= 2*time.Second {
		t.Errorf("main-topic p99 latency %v, want under 2s", p99)
	}
	if redone != 0 {
		t.Errorf("%d lane events handled again within the test, before their 30s delay", redone)
	}
}
