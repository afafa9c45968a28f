package kafka_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
)

// deadlineMargin is how long after its context's deadline a publish may
// return: the margin the package documentation promises (Publish), with
// room for a loaded machine under -race.
const deadlineMargin = 250 * time.Millisecond

// hold makes the cluster hold every request of key until the returned
// release is called (also at the end of the test): the broker reads the
// request and does not answer, as one that stalls.
func hold(t *testing.T, c *kfake.Cluster, key kmsg.Key) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-ch })
		return nil, nil, false // then answered as usual
	})
	return release
}

// publishWithin publishes msg with a context that ends after d and returns
// how long past the deadline Publish took and its error; it fails the test
// if Publish is still blocked well after.
func publishWithin(t *testing.T, publish func(ctx context.Context) error, d time.Duration) (late time.Duration, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- publish(ctx) }()
	select {
	case err := <-done:
		return time.Since(start) - d, err
	case <-time.After(d + 10*time.Second):
		t.Fatalf("publish with a %v deadline still blocked after %v", d, d+10*time.Second)
		return 0, nil
	}
}

// TestPublishDeadlineUnansweredProduce: a broker that takes the produce
// request and never answers. Publish returns by its context's deadline
// (plus the documented margin) with an error that wraps the context's and
// ErrMaybeSent, and indeed the record is stored once the broker answers.
func TestPublishDeadlineUnansweredProduce(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic := unique("stalled")
	if err := tr.ProvisionGroup(context.Background(), topic, "readers"); err != nil {
		t.Fatal(err)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	release := hold(t, c, kmsg.Produce)
	const d = 300 * time.Millisecond
	msg := message.NewMessage("stalled-1", []byte(`{}`))
	late, err := publishWithin(t, func(ctx context.Context) error {
		msg.SetContext(ctx)
		return pub.Publish(topic, msg)
	}, d)
	t.Logf("Publish returned %v after its deadline: %v", late.Round(time.Millisecond), err)
	if late > deadlineMargin {
		t.Errorf("Publish returned %v after its deadline, want within %v", late, deadlineMargin)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("Publish to a stalled broker = %v, want context.DeadlineExceeded and ErrMaybeSent", err)
	}
	delayed := message.NewMessage("stalled-delayed", []byte(`{}`))
	late, err = publishWithin(t, func(ctx context.Context) error {
		return tr.PublishDelayed(ctx, topic, time.Second, delayed)
	}, d)
	if late > deadlineMargin || !errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("PublishDelayed to a stalled broker = %v, %v after its deadline; want ErrMaybeSent within %v", err, late, deadlineMargin)
	}
	release()
	if n := readAll(t, c.ListenAddrs(), topic, 1, 30*time.Second)[msg.UUID]; n != 1 {
		t.Errorf("the record of the timed-out publish was stored %d times once the broker answered; ErrMaybeSent said it might be, want 1", n)
	}
}

// TestPublishDeadlineNothingSent: where the record certainly was not
// written, the error does not wrap ErrMaybeSent: a context already done, a
// closed transport, and a deadline that ends while the topic is being
// created (the broker holds CreateTopics), before anything was produced.
func TestPublishDeadlineNothingSent(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	done, cancel := context.WithCancel(context.Background())
	cancel()
	msg := message.NewMessage("done-1", nil)
	msg.SetContext(done)
	if err := pub.Publish(unique("done"), msg); !errors.Is(err, context.Canceled) || errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("Publish with a done context = %v, want context.Canceled without ErrMaybeSent", err)
	}

	release := hold(t, c, kmsg.CreateTopics)
	const d = 300 * time.Millisecond
	late, err := publishWithin(t, func(ctx context.Context) error {
		m := message.NewMessage("creating-1", nil)
		m.SetContext(ctx)
		return pub.Publish(unique("creating"), m)
	}, d)
	if late > deadlineMargin || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("Publish while the topic is being created = %v, %v after its deadline; want context.DeadlineExceeded without ErrMaybeSent within %v", err, late, deadlineMargin)
	}
	release()

	other := open(t, testConfig(c.ListenAddrs()))
	closedPub, err := other.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Close()
	if err := closedPub.Publish(unique("closed"), message.NewMessage("closed-1", nil)); err == nil || errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("Publish on a closed transport = %v, want ErrClosed without ErrMaybeSent", err)
	}
}
