package rabbitmq_test

import (
	"context"
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports/rabbitmq"
)

func TestRemoveGroup(t *testing.T) {
	requireBroker(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("remove")
	ctx := context.Background()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	queue := rabbitmq.QueueName(topic, group)
	if _, err := rawChannel(t).QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("queue %s missing after ProvisionGroup: %v", queue, err)
	}
	if err := tr.RemoveGroup(ctx, topic, group); err != nil {
		t.Fatalf("RemoveGroup: %v", err)
	}
	_, err := rawChannel(t).QueueDeclarePassive(queue, true, false, false, false, nil)
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != amqp.NotFound {
		t.Errorf("passive declare after RemoveGroup = %v, want NOT_FOUND", err)
	}
	if err := tr.RemoveGroup(ctx, topic, "never-existed"); err != nil {
		t.Errorf("RemoveGroup of a missing queue: %v, want nil", err)
	}
}
