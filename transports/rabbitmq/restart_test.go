package rabbitmq_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// Restarted is the event of the broker-restart test.
type Restarted struct {
	Publisher int `json:"publisher"`
	Seq       int `json:"seq"`
}

func (Restarted) EventName() string { return "rabbitmq.test.restarted" }

// 10,000 events from 10 publishers while the broker node is stopped and
// started again: every event whose Publish returned nil is handled.
func TestBrokerRestartLosesNothing(t *testing.T) {
	n := startedPrivateNode(t)
	const publishers, perPublisher = 10, 1000
	const total = publishers * perPublisher
	tr := newTransport(t, rabbitmq.Config{
		URL:            transports.SecretURL(n.url()),
		ReconnectMax:   500 * time.Millisecond,
		PublishTimeout: 5 * time.Second,
		Heartbeat:      2 * time.Second,
	})
	topic, group := ids("restart")

	var mu sync.Mutex
	progress := make(chan struct{}, 1) // signalled at each handled event
	handled := make(map[Restarted]int, total)
	confirmed := make(map[Restarted]bool, total)
	newBusOf := func(subscribe func(b *bus.Bus)) *bus.Bus {
		b, err := bus.New(tr, bus.Config{Service: "restart-test", Logger: quietLogger(),
			Topics: map[string]string{Restarted{}.EventName(): topic}})
		if err != nil {
			t.Fatalf("bus.New: %v", err)
		}
		if subscribe != nil {
			subscribe(b)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		<-b.Running()
		t.Cleanup(func() { cancel(); <-done })
		return b
	}
	newBusOf(func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e Restarted) error {
			mu.Lock()
			handled[e]++
			mu.Unlock()
			select {
			case progress <- struct{}{}:
			default:
			}
			return nil
		}, bus.WithConcurrency(4))
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	})
	pubBus := newBusOf(nil)

	var published, failures atomic.Int64
	stopAt := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Minute)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				e := Restarted{Publisher: p, Seq: i}
				for {
					if time.Now().After(deadline) {
						t.Errorf("publisher %d: gave up on event %d", p, i)
						return
					}
					if err := bus.Publish(context.Background(), pubBus, e); err != nil {
						failures.Add(1)
						continue
					}
					break
				}
				mu.Lock()
				confirmed[e] = true
				mu.Unlock()
				if published.Add(1) == total*3/10 {
					stopOnce.Do(func() { close(stopAt) })
				}
			}
		}()
	}
	<-stopAt
	began := time.Now()
	atStop := published.Load()
	if err := n.stop(); err != nil {
		t.Fatalf("stop node: %v", err)
	}
	t.Logf("node stopping after %d confirmed publishes, stopped after %d", atStop, published.Load())
	if err := n.start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Logf("node back after %v", time.Since(began).Round(time.Millisecond))
	wg.Wait()
	if t.Failed() {
		return
	}

	waitUntil := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		missing := 0
		for e := range confirmed {
			if handled[e] == 0 {
				missing++
			}
		}
		dups := 0
		for _, c := range handled {
			dups += c - 1
		}
		mu.Unlock()
		if missing == 0 {
			t.Logf("%d events confirmed, 0 lost, %d duplicate deliveries, %d failed publish attempts retried", len(confirmed), dups, failures.Load())
			if len(confirmed) != total {
				t.Errorf("%d events confirmed, want %d", len(confirmed), total)
			}
			return
		}
		select {
		case <-progress:
		case <-time.After(time.Until(waitUntil)):
			t.Fatalf("%d of %d confirmed events never handled (lost)", missing, len(confirmed))
		}
	}
}
