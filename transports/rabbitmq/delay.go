package rabbitmq

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Delays are kept by the broker in binary delay levels, after NServiceBus's
// delay infrastructure: level L is a queue whose messages all wait 2^L
// units (x-message-ttl) and then dead-letter to level L-1's exchange; the
// routing key spells the delay in binary, one word per level, so each
// level's exchange sends a message to its queue when the level's bit is 1
// and on to the next level's exchange when it is 0. Level 0 dead-letters to
// one headers exchange, which delivers to the destination topic's exchange
// by a header that names it. Every queue of a level holds messages of one
// TTL, so they expire in arrival order: no message waits behind another.
const (
	// DelayUnit is the delay levels' resolution: a delay is rounded up to
	// a whole number of units, so a delayed message is at most one unit
	// late from the rounding, plus the dead-lettering of one hop per bit
	// set (2s: 2 hops; 10s: 3; 1m: 4; 10m: 8; 45m: 8). A coarser unit
	// means fewer hops; a finer one, more.
	DelayUnit = 100 * time.Millisecond

	// DelayLevels is the number of delay levels: of queues and exchanges
	// the delays use, per queue type, on each virtual host.
	DelayLevels = 32

	// MaxDelay is the longest delay PublishDelayed accepts:
	// (2^DelayLevels - 1) units, about 13.6 years.
	MaxDelay = (1<<DelayLevels - 1) * DelayUnit
)

// DelayDeliveryExchange is the headers exchange the last delay level
// dead-letters into; it is bound to each destination topic's exchange by
// the header delayToHeader.
const DelayDeliveryExchange = "busline.delay.deliver"

// delayToHeader names the destination exchange of a delayed message. It is
// not an x- header, which a headers exchange ignores, and it is removed,
// with the dead-lettering headers the levels add, before the message is
// handed out.
const delayToHeader = "busline_rabbitmq_delay_to"

// deathHeaders are the headers RabbitMQ adds when it dead-letters a
// message.
var deathHeaders = []string{"x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"}

// DelayLevelName returns the name of delay level level's queue and
// exchange for queues of queueType: busline.delay.<LL> for classic queues,
// busline.delay-quorum.<LL> for quorum queues (the two kinds cannot share
// a queue, and services on one virtual host may use either).
func DelayLevelName(queueType string, level int) string {
	if queueType == QueueQuorum {
		return fmt.Sprintf("busline.delay-quorum.%02d", level)
	}
	return fmt.Sprintf("busline.delay.%02d", level)
}

// delayUnits is delay in units, rounded up, so that nothing is early; 0
// for a delay of zero or less.
func delayUnits(delay time.Duration) uint64 {
	if delay <= 0 {
		return 0
	}
	return uint64((delay + DelayUnit - 1) / DelayUnit)
}

// delayRoutingKey spells units in binary, highest level first, one word per
// level: "0.0.….1.0".
func delayRoutingKey(units uint64) string {
	var b strings.Builder
	b.Grow(2 * DelayLevels)
	for level := DelayLevels - 1; level >= 0; level-- {
		if units>>level&1 == 1 {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
		if level > 0 {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// levelPattern is the binding key that matches routing keys whose bit for
// level is bit.
func levelPattern(level int, bit byte) string {
	p := strings.Repeat("*.", DelayLevels-1-level) + string(bit)
	if level > 0 {
		p += ".#"
	}
	return p
}

// declareDelays declares the delay levels and the delivery exchange. It is
// idempotent.
func declareDelays(ch *amqp.Channel, cfg *Config) error {
	if err := ch.ExchangeDeclare(DelayDeliveryExchange, amqp.ExchangeHeaders, true, false, false, false, nil); err != nil {
		return topologyError(fmt.Sprintf("declare exchange %q", DelayDeliveryExchange), err, "an exchange of that name exists with other settings: delete it (busline declares a durable headers exchange)")
	}
	for level := range DelayLevels {
		name := DelayLevelName(cfg.QueueType, level)
		if err := ch.ExchangeDeclare(name, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return topologyError(fmt.Sprintf("declare exchange %q", name), err, "an exchange of that name exists with other settings: delete it (busline declares durable topic exchanges for its delay levels)")
		}
	}
	for level := range DelayLevels {
		name := DelayLevelName(cfg.QueueType, level)
		next := DelayDeliveryExchange
		if level > 0 {
			next = DelayLevelName(cfg.QueueType, level-1)
		}
		args := amqp.Table{
			"x-message-ttl":          (int64(1) << level) * DelayUnit.Milliseconds(),
			"x-dead-letter-exchange": next,
		}
		if cfg.QueueType == QueueQuorum {
			// At-least-once dead-lettering: a message leaves a level only
			// once the next one confirmed it (needs reject-publish).
			args[amqp.QueueTypeArg] = amqp.QueueTypeQuorum
			args["x-dead-letter-strategy"] = "at-least-once"
			args["x-overflow"] = "reject-publish"
		}
		if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
			return topologyError(fmt.Sprintf("declare delay queue %q", name), err, "a queue of that name exists with other settings: delete it once empty (its waiting messages are lost)")
		}
		if err := ch.QueueBind(name, levelPattern(level, '1'), name, false, nil); err != nil {
			return topologyError(fmt.Sprintf("bind delay queue %q", name), err, "")
		}
		if err := ch.ExchangeBind(next, levelPattern(level, '0'), name, false, nil); err != nil {
			return topologyError(fmt.Sprintf("bind exchange %q to %q", next, name), err, "")
		}
	}
	return nil
}

// declareDelayed declares, once per connection, the delay levels, topic's
// exchange and its binding to the delivery exchange, and the queues of the
// lane topic provisioned here.
func (p *publishPool) declareDelayed(ctx context.Context, topic string) error {
	if isLane(topic) {
		if err := p.declareLane(ctx, topic); err != nil {
			return err
		}
	} else if err := p.declare(ctx, topic); err != nil {
		return err
	}
	_, gen, err := p.conn.get(ctx)
	if err != nil {
		return err
	}
	p.declareMu.Lock()
	levels := p.delayDecl != gen
	done := !levels && p.delayDest[topic] == gen
	p.declareMu.Unlock()
	if done {
		return nil
	}
	dest := ExchangeName(topic)
	gen, err = p.conn.do(ctx, func(ch *amqp.Channel) error {
		if levels {
			if err := declareDelays(ch, p.cfg); err != nil {
				return err
			}
		}
		if err := ch.ExchangeBind(dest, "", DelayDeliveryExchange, false, amqp.Table{"x-match": "all", delayToHeader: dest}); err != nil {
			return topologyError(fmt.Sprintf("bind exchange %q to %q", dest, DelayDeliveryExchange), err, "")
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.declareMu.Lock()
	p.delayDecl = gen
	p.delayDest[topic] = gen
	p.declareMu.Unlock()
	return nil
}

// forgetDelays makes the next delayed publish declare the levels again.
func (p *publishPool) forgetDelays() {
	p.declareMu.Lock()
	defer p.declareMu.Unlock()
	p.delayDecl = 0
}

// PublishDelayed publishes msgs to topic once delay has passed (see
// transports.Delayer): they wait in the broker's delay levels, held by no
// consumer, and are then delivered to topic's exchange, reaching every
// group whose queue is bound to it at that time. It returns once RabbitMQ
// confirmed them; a message no delay level took fails with ErrUnroutable.
// The delay is rounded up to DelayUnit; a delay of zero or less publishes
// at once (as Publish), one longer than MaxDelay is refused. Delayed
// publishes are always confirmed, Config.DisableConfirms notwithstanding.
func (t *Transport) PublishDelayed(ctx context.Context, topic string, delay time.Duration, msgs ...*message.Message) (err error) {
	if t.isClosed() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := t.checkSize(msgs); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	if delay <= 0 {
		if isLane(topic) {
			return t.pool.publishLane(ctx, topic, msgs)
		}
		return t.pool.publish(ctx, topic, msgs)
	}
	if delay > MaxDelay {
		return fmt.Errorf("rabbitmq: publish to %s with a delay of %v: longer than the %v the delay levels hold (Features().MaxDelay); publish it later, or re-publish it with a delay once it arrives", topic, delay, MaxDelay)
	}
	defer func() {
		if err != nil {
			t.pool.forget(topic)
			t.pool.forgetDelays()
		}
	}()
	due := time.Now().Add(delay)
	ctx, cancel := context.WithTimeout(ctx, t.cfg.PublishTimeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s with a delay of %v: %w (nothing sent)", topic, delay, err)
	}
	if err := t.pool.declareDelayed(ctx, topic); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s with a delay of %v: %w (nothing sent)", topic, delay, err)
	}
	// The delay counts from the call: declaring took some of it.
	units := delayUnits(time.Until(due))
	if units == 0 {
		if isLane(topic) {
			return t.pool.publishLane(ctx, topic, msgs)
		}
		return t.pool.publish(ctx, topic, msgs)
	}
	level := bits.Len64(units) - 1
	dest := ExchangeName(topic)
	pubs := make([]amqp.Publishing, len(msgs))
	for i, m := range msgs {
		pubs[i] = toPublishing(m, true, t.cfg.HeaderPrefix)
		pubs[i].Headers[delayToHeader] = dest
	}
	if err := t.pool.publishMandatory(ctx, DelayLevelName(t.cfg.QueueType, level), delayRoutingKey(units), msgs, pubs); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s with a delay of %v: %w", topic, delay, err)
	}
	return nil
}
