package rabbitmq

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// maxNameLen is RabbitMQ's limit on exchange and queue names, in bytes.
const maxNameLen = 255

// ExchangeName returns the name of the durable fanout exchange that carries
// topic: the topic itself, or for a topic longer than 255 bytes its first
// 238 bytes, "~" and 16 hex digits of its SHA-256.
func ExchangeName(topic string) string { return shorten(topic) }

// QueueName returns the name of the durable queue of group on topic:
// "<topic>:<group>", shortened like ExchangeName when longer than 255 bytes.
// The colon cannot appear in busline's topic and group names, so no two
// (topic, group) pairs share a queue.
func QueueName(topic, group string) string { return shorten(topic + ":" + group) }

func shorten(name string) string {
	if len(name) <= maxNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxNameLen-17] + "~" + hex.EncodeToString(sum[:8])
}

// declareExchange declares topic's exchange.
func declareExchange(ch *amqp.Channel, topic string) error {
	if err := ch.ExchangeDeclare(ExchangeName(topic), amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return topologyError(fmt.Sprintf("declare exchange %q", ExchangeName(topic)), err,
			"an exchange of that name exists with other settings: delete it, or use another topic (busline declares durable fanout exchanges)")
	}
	return nil
}

// declareGroup declares topic's exchange and group's queue on it, and binds
// them. It is idempotent. The queue of one of group's lanes (isLaneOf) gets
// no x-expires, whatever Config.QueueExpires says.
func declareGroup(ch *amqp.Channel, cfg *Config, topic, group string) error {
	if err := declareExchange(ch, topic); err != nil {
		return err
	}
	q := QueueName(topic, group)
	args := amqp.Table{}
	if cfg.QueueType == QueueQuorum {
		args[amqp.QueueTypeArg] = amqp.QueueTypeQuorum
	}
	expires := cfg.QueueExpires
	if isLaneOf(topic, group) {
		expires = 0 // a lane never expires: its messages wait for no consumer
	}
	if expires > 0 {
		args[amqp.QueueTTLArg] = expires.Milliseconds()
	}
	if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
		return topologyError(fmt.Sprintf("declare queue %q", q), err,
			fmt.Sprintf("a queue of that name exists with other settings (queue_type %q, queue_expires %v here; lanes never expire): make them match the existing queue, or delete the queue (its messages are lost)", cfg.QueueType, expires))
	}
	if err := ch.QueueBind(q, "", ExchangeName(topic), false, nil); err != nil {
		return topologyError(fmt.Sprintf("bind queue %q to exchange %q", q, ExchangeName(topic)), err, "")
	}
	return nil
}

func topologyError(what string, err error, precondition string) error {
	var aerr *amqp.Error
	if precondition != "" && errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed {
		return fmt.Errorf("rabbitmq: %s: %w (%s)", what, err, precondition)
	}
	if errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused {
		return fmt.Errorf("rabbitmq: %s: %w (grant the user configure, write and read permissions on the virtual host)", what, err)
	}
	return fmt.Errorf("rabbitmq: %s: %w", what, err)
}
