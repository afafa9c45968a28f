package rabbitmq_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/internal/faultproxy"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// deadlineMargin is how far past its context's deadline a Publish may
// return in these tests: the documented margin is a few milliseconds, and
// this machine is loaded (-race, parallel tests, other engineers).
const deadlineMargin = 500 * time.Millisecond

// proxied returns a transport that reaches the shared broker through a
// fault proxy, and the proxy. The proxy passes traffic again before the
// transport closes.
func proxied(t *testing.T, cfg rabbitmq.Config) (*rabbitmq.Transport, *faultproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	p := faultproxy.New(t, u.Host)
	u.Host = p.Addr()
	cfg.URL = transports.SecretURL(u.String())
	tr := newTransport(t, cfg)
	t.Cleanup(func() { p.Set(faultproxy.Pass) }) // runs before the transport's Close
	return tr, p
}

// pendingPublish is a Publish running in the background.
type pendingPublish struct {
	timeout time.Duration
	start   time.Time
	done    chan error
	took    time.Duration // set before done receives
}

// startPublish publishes msg to topic in the background, with a context
// that ends after timeout.
func startPublish(pub message.Publisher, topic string, timeout time.Duration, msg *message.Message) *pendingPublish {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	msg.SetContext(ctx)
	p := &pendingPublish{timeout: timeout, start: time.Now(), done: make(chan error, 1)}
	go func() {
		defer cancel()
		err := pub.Publish(topic, msg)
		p.took = time.Since(p.start)
		p.done <- err
	}()
	return p
}

// wait returns Publish's error and how long it took, failing the test when
// it took longer than its deadline plus deadlineMargin; returned is false
// when it had not returned after limit (reported as a failure too).
func (p *pendingPublish) wait(t *testing.T, limit time.Duration) (took time.Duration, returned bool, err error) {
	t.Helper()
	select {
	case err = <-p.done:
		took = p.took
		if took > p.timeout+deadlineMargin {
			t.Errorf("Publish with a %v context took %v (returned %v)", p.timeout, took, err)
		}
		return took, true, err
	case <-time.After(limit - time.Since(p.start)):
		t.Errorf("Publish with a %v context has not returned after %v", p.timeout, limit)
		return limit, false, nil
	}
}

// timedPublish publishes msg with a context of the given timeout; see
// pendingPublish.wait. It fails the test at once when Publish has not
// returned after limit.
func timedPublish(t *testing.T, pub message.Publisher, topic string, timeout, limit time.Duration, msg *message.Message) (time.Duration, error) {
	t.Helper()
	took, returned, err := startPublish(pub, topic, timeout, msg).wait(t, limit)
	if !returned {
		t.FailNow()
	}
	return took, err
}

// A Publish whose confirm never comes (the network drops every byte after
// the message was written) returns by its context's deadline, with an
// error that says the broker may have the message; one that could not even
// start (a new topic's exchange cannot be declared) returns by its
// deadline too, and says that nothing was sent. Both measured 30 s and
// more (the heartbeat timeout) before Publish was bounded by the context.
func TestPublishBoundedByContextWhenNetworkDrops(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr, proxy := proxied(t, rabbitmq.Config{})
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	// A failed publish makes the next one to its topic declare the
	// exchange again, which cannot work while the network drops: each
	// case publishes to a topic of its own.
	topic, _ := ids("deadline.drop")
	bigTopic, _ := ids("deadline.drop.big")
	// Open the publishing channels, those of large messages too, and
	// declare the topics' exchanges.
	for i := range 8 {
		if err := pub.Publish(topic, message.NewMessage("warm-"+string(rune('a'+i)), []byte("x"))); err != nil {
			t.Fatalf("publish before the drop: %v", err)
		}
		if err := pub.Publish(bigTopic, message.NewMessage("warm-large-"+string(rune('a'+i)), bytes.Repeat([]byte("x"), 200<<10))); err != nil {
			t.Fatalf("publish before the drop: %v", err)
		}
	}
	proxy.Set(faultproxy.Drop)
	const timeout = 2 * time.Second

	t.Run("ConfirmPending", func(t *testing.T) {
		took, err := timedPublish(t, pub, topic, timeout, 45*time.Second, message.NewMessage("dropped", []byte("x")))
		t.Logf("Publish took %v: %v", took, err)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, transports.ErrMaybeSent) {
			t.Errorf("Publish = %v, want context.DeadlineExceeded and transports.ErrMaybeSent (written, never confirmed)", err)
		}
	})
	t.Run("NewTopicNothingSent", func(t *testing.T) {
		other, _ := ids("deadline.drop.new")
		took, err := timedPublish(t, pub, other, timeout, 45*time.Second, message.NewMessage("never-sent", []byte("x")))
		t.Logf("Publish took %v: %v", took, err)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transports.ErrMaybeSent) {
			t.Errorf("Publish = %v, want context.DeadlineExceeded and not transports.ErrMaybeSent (the exchange was never declared, nothing was sent)", err)
		}
	})
	t.Run("WriteBlocks", func(t *testing.T) {
		// More than the socket buffers and the proxy hold: the write
		// itself blocks, and amqp091 writes without a deadline.
		big := message.NewMessage("big", bytes.Repeat([]byte("x"), 32<<20))
		took, err := timedPublish(t, pub, bigTopic, timeout, 45*time.Second, big)
		t.Logf("Publish of %d bytes took %v: %v", len(big.Payload), took, err)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, transports.ErrMaybeSent) {
			t.Errorf("Publish = %v, want context.DeadlineExceeded and transports.ErrMaybeSent (partly written)", err)
		}
	})
	t.Run("ResumesAfterDrop", func(t *testing.T) {
		proxy.Set(faultproxy.Pass)
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			msg := message.NewMessage("after", []byte("x"))
			msg.SetContext(ctx)
			err := pub.Publish(topic, msg)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Publish still fails 30s after the network came back: %v", err)
			}
		}
	})
}

// A fresh transport whose first Publish finds the network dropping returns
// by the deadline, nothing sent: neither the exchange declaration nor the
// publishing channel's opening may hold Publish past it.
func TestFirstPublishBoundedWhenNetworkDrops(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr, proxy := proxied(t, rabbitmq.Config{})
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	topic, _ := ids("deadline.first")
	proxy.Set(faultproxy.Drop)
	first := startPublish(pub, topic, 2*time.Second, message.NewMessage("first", []byte("x")))
	// A second publisher, to another topic, is not held up behind the
	// first: it returns by its own, earlier, deadline.
	other, _ := ids("deadline.first.other")
	second := startPublish(pub, other, time.Second, message.NewMessage("second", []byte("x")))
	took, returned, err := first.wait(t, 45*time.Second)
	t.Logf("Publish took %v: %v", took, err)
	if !returned {
		t.FailNow()
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("Publish = %v, want context.DeadlineExceeded and not transports.ErrMaybeSent", err)
	}
	took, returned, err = second.wait(t, 45*time.Second)
	t.Logf("second Publish took %v: %v", took, err)
	if !returned {
		t.FailNow()
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transports.ErrMaybeSent) {
		t.Errorf("second Publish = %v, want context.DeadlineExceeded and not transports.ErrMaybeSent", err)
	}
}

// Closing a transport whose network drops every byte, with a consumer
// running, returns within a few seconds: it does not wait for answers the
// broker cannot send (channel.close, connection.close) until the heartbeat
// gives up on the connection.
func TestCloseBoundedWhenNetworkDrops(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	u, err := url.Parse(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultproxy.New(t, u.Host)
	u.Host = proxy.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tr, err := rabbitmq.New(ctx, rabbitmq.Config{URL: transports.SecretURL(u.String()), Logger: quietLogger(), QueueExpires: testQueueExpires})
	if err != nil {
		t.Fatal(err)
	}
	topic, group := ids("deadline.close")
	msgs := subscribe(t, tr, topic, group)
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, message.NewMessage("m", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	receive(t, msgs, 10*time.Second).Ack()
	proxy.Set(faultproxy.Drop)
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- tr.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close took %v: %v", time.Since(start), err)
		if took := time.Since(start); took > 8*time.Second {
			t.Errorf("Close took %v with the network dropping", took)
		}
		if err != nil {
			t.Errorf("Close = %v, want nil: the connections are closed on this side", err)
		}
	case <-time.After(60 * time.Second):
		proxy.Set(faultproxy.Pass)
		<-closed
		t.Fatalf("Close had not returned after 60s with the network dropping")
	}
}
