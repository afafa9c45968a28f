package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// Without max_message_bytes, the limit is the default max_message_size of
// the broker's version: 128 MiB on the 3.x this machine runs, 16 MiB on
// 4.x.
func TestMaxMessageBytesDefaultIsTheBrokers(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	version, _ := conn.Properties["version"].(string)
	_ = conn.Close()
	want := rabbitmq.MaxMessageBytes3
	if strings.HasPrefix(version, "4.") {
		want = rabbitmq.MaxMessageBytes4
	}
	tr := newTransport(t, rabbitmq.Config{})
	if got := tr.Features().MaxMessageBytes; got != want {
		t.Errorf("Features().MaxMessageBytes = %d on RabbitMQ %s, want %d", got, version, want)
	}
	if got := tr.Config().MaxMessageBytes; got != want {
		t.Errorf("Config().MaxMessageBytes = %d, want %d", got, want)
	}
	tr = newTransport(t, rabbitmq.Config{MaxMessageBytes: 1000})
	if got := tr.Features().MaxMessageBytes; got != 1000 {
		t.Errorf("Features().MaxMessageBytes = %d with max_message_bytes 1000", got)
	}
}

// A message under max_message_bytes that the broker refuses all the same
// (its max_message_size is lower) fails with the broker's reason, says
// that nothing was stored, and fails no publish running beside it. Before,
// the error was "did not confirm ... retrying can duplicate it", without
// the reason.
func TestBrokerRefusalKeepsItsReason(t *testing.T) {
	t.Parallel()
	const brokerMax = 1 << 20
	n := ownPrivateNode(t, nodeOptions{maxMessageSize: brokerMax})
	tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(n.url()), MaxMessageBytes: 4 * brokerMax})
	topic, group := ids("size.refused")
	msgs := subscribe(t, tr, topic, group)
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		const small = 50
		var wg sync.WaitGroup
		errs := make([]error, small)
		for i := range small {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				m := message.NewMessage(fmt.Sprintf("small-%d-%d", round, i), []byte(strings.Repeat("s", 1000)))
				m.SetContext(ctx)
				errs[i] = pub.Publish(topic, m)
			})
		}
		big := message.NewMessage(fmt.Sprintf("big-%d", round), []byte(strings.Repeat("b", 2*brokerMax)))
		err := pub.Publish(topic, big)
		wg.Wait()
		t.Logf("round %d: Publish of %d bytes to a broker with max_message_size %d: %v", round, len(big.Payload), brokerMax, err)
		if err == nil || !strings.Contains(err.Error(), "PRECONDITION_FAILED") || !strings.Contains(err.Error(), fmt.Sprint(brokerMax)) {
			t.Errorf("round %d: Publish of an oversized message = %v, want the broker's PRECONDITION_FAILED reason with its limit", round, err)
		}
		if !errors.Is(err, transports.ErrTooLarge) || errors.Is(err, transports.ErrMaybeSent) {
			t.Errorf("round %d: Publish = %v, want an error wrapping transports.ErrTooLarge and not ErrMaybeSent (the broker stored nothing)", round, err)
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: small publish %d beside the refused one failed: %v", round, i, err)
			}
		}
		seen := map[string]bool{}
		for len(seen) < small {
			m := receive(t, msgs, 15*time.Second)
			m.Ack()
			if strings.HasPrefix(m.UUID, "big") {
				t.Fatalf("the refused message %s was delivered", m.UUID)
			}
			seen[m.UUID] = true
		}
	}
	expectNone(t, msgs, 500*time.Millisecond)
}
