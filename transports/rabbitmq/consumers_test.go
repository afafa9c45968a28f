package rabbitmq_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// Consume returns only once the broker registered the consumer, so that
// messages published right after a bus starts are spread over every
// consumer of the group: with the consumer registered in the background,
// the first one up filled its prefetch with all of them, and a case that
// needs 50 handlers in flight at once timed out on a loaded machine.
func TestConsumeReturnsRegistered(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(brokerURL()), Logger: quietLogger()})
	topic, group := ids("registered")
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := rawChannel(t)
	const n = 8
	for i := range n {
		_, err := sub.(transports.Consumer).Consume(ctx, topic, func(m *message.Message) { m.Ack() })
		if err != nil {
			t.Fatal(err)
		}
		q, err := ch.QueueDeclarePassive(rabbitmq.QueueName(topic, group), true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Consumers != i+1 {
			t.Fatalf("after %d Consume calls returned, the broker has %d consumers on the queue", i+1, q.Consumers)
		}
	}
}
