package rabbitmq

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports"
)

var _ transports.BacklogReader = (*Transport)(nil)

// Backlog reports group's backlog on topic from a passive declare of the
// group's queue, which creates nothing: Messages is the count of ready
// messages RabbitMQ returns. AMQP reports neither the messages delivered
// and not yet acked nor, for a retry lane, those still waiting in the
// shared delay queues, so both are left out; Oldest is zero, since AMQP
// cannot read a queue's head without consuming it. A queue that does not
// exist has an empty backlog. One collection costs a channel open and a
// queue.declare round trip. The transport is no transports.Inspector: AMQP
// cannot list the queues bound to an exchange.
func (t *Transport) Backlog(ctx context.Context, topic, group string) (transports.Backlog, error) {
	if t.isClosed() {
		return transports.Backlog{}, ErrClosed
	}
	var ready int
	_, err := t.pubConn.do(ctx, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(QueueName(topic, group), true, false, false, false, nil)
		if err != nil {
			return err
		}
		ready = q.Messages
		return nil
	})
	var ae *amqp.Error
	switch {
	case errors.As(err, &ae) && ae.Code == amqp.NotFound:
		return transports.Backlog{}, nil
	case err != nil:
		return transports.Backlog{}, fmt.Errorf("rabbitmq: backlog of %s on %s: %w", group, topic, err)
	}
	return transports.Backlog{Messages: int64(ready)}, nil
}
