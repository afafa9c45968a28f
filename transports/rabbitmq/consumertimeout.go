package rabbitmq

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/wire"
)

// ConsumerTimeoutError is the failure recorded in the poison lane for a
// message whose handler outlasted RabbitMQ's consumer_timeout on
// Config.TimeoutAttempts deliveries: each time the broker closed the
// channel and redelivered the message while the handler still ran.
type ConsumerTimeoutError struct {
	Queue      string        // the group's queue
	Timeout    time.Duration // Config.ConsumerTimeout, the broker's limit as configured here
	Deliveries int           // deliveries that ended in consumer_timeout
}

// Error says what happened and how to fix it.
func (e *ConsumerTimeoutError) Error() string {
	return fmt.Sprintf("rabbitmq: the handler outlasted the broker's consumer_timeout (%v, as configured in consumer_timeout) on %d deliveries from queue %q: RabbitMQ closed the channel and redelivered the message each time; make the handler faster, bound it with a per-attempt timeout below consumer_timeout, or raise consumer_timeout on the broker", e.Timeout, e.Deliveries, e.Queue)
}

// isConsumerTimeout reports whether the broker closed a channel because a
// delivery stayed unacked past its consumer_timeout.
func isConsumerTimeout(e *amqp.Error) bool {
	return e != nil && e.Code == amqp.PreconditionFailed && strings.Contains(e.Reason, "delivery acknowledgement") && strings.Contains(e.Reason, "timed out")
}

// timeouts counts, per message id, the deliveries of a subscriber that
// ended in the broker's consumer_timeout while their handler ran. The
// count lives in the process: another instance of the group that gets the
// redelivery starts from zero.
type timeouts struct {
	mu     sync.Mutex
	counts map[string]int
}

func (t *timeouts) add(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil || len(t.counts) >= maxTracked {
		t.counts = map[string]int{}
	}
	t.counts[id]++
	return t.counts[id]
}

func (t *timeouts) get(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[id]
}

func (t *timeouts) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.counts, id)
}

// watchTimeout counts the delivery in the handler when the broker closes ch
// for consumer_timeout: the oldest of f, those handed out and unsettled.
// It returns when ch closes.
func (c *consumer) watchTimeout(ch *amqp.Channel, f *inflight) (done <-chan struct{}) {
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	d := make(chan struct{})
	go func() {
		defer close(d)
		e, ok := <-closed
		if !ok || !isConsumerTimeout(e) {
			return
		}
		id := f.oldest()
		cfg := c.s.t.cfg
		if id == "" {
			cfg.Logger.Warn("rabbitmq: the broker closed the consumer's channel for consumer_timeout", "queue", c.queue, "error", e)
			return
		}
		n := c.s.timeouts.add(id)
		cfg.Logger.Warn("rabbitmq: a handler outlasted the broker's consumer_timeout: the broker closed the channel and will redeliver the message; once this happens timeout_attempts times, the message goes to the poison lane",
			"queue", c.queue, "message", id, "deliveries_timed_out", n, "timeout_attempts", cfg.TimeoutAttempts, "consumer_timeout", cfg.ConsumerTimeout, "error", e)
	}()
	return d
}

// poisonTimedOut moves a redelivered message whose earlier deliveries ended
// in consumer_timeout Config.TimeoutAttempts times to the group's poison
// lane, with reason timeout, instead of running its handler again; the
// delivery is acked once the poison lane has it, nacked if that fails.
func (c *consumer) poisonTimedOut(msg *message.Message, d *amqp.Delivery, n int, st *settler) {
	cfg := c.s.t.cfg
	main := c.topic
	if retry := wire.RetryTopic("", c.s.group); strings.HasSuffix(main, retry) && len(main) > len(retry) {
		main = strings.TrimSuffix(main, retry)
	}
	cause := &ConsumerTimeoutError{Queue: c.queue, Timeout: cfg.ConsumerTimeout, Deliveries: n}
	now := time.Now()
	f, _ := wire.ReadFailure(msg.Metadata)
	f.Attempts += n
	f.Reason, f.Error, f.ErrorType = wire.ReasonTimeout, cause.Error(), fmt.Sprintf("%T", cause)
	f.Group, f.Topic = c.s.group, main
	if f.FirstFailure.IsZero() {
		f.FirstFailure = now
	}
	f.LastFailure, f.Tier, f.Due = now, 0, time.Time{}
	poison := msg.Copy()
	f.Write(poison.Metadata)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.PublishTimeout)
	defer cancel()
	lane := wire.PoisonTopic(main, c.s.group)
	if err := c.s.t.pool.publishLane(ctx, lane, []*message.Message{poison}); err != nil {
		cfg.Logger.Warn("rabbitmq: moving a message that outlasted consumer_timeout to the poison lane failed; it stays in the queue", "queue", c.queue, "message", msg.UUID, "lane", lane, "error", err)
		st.settle(msg.UUID, d.DeliveryTag, false)
		return
	}
	cfg.Logger.Warn("rabbitmq: moved a message that outlasted consumer_timeout to the poison lane", "queue", c.queue, "message", msg.UUID, "lane", lane, "deliveries_timed_out", n)
	c.s.timeouts.forget(msg.UUID)
	st.settle(msg.UUID, d.DeliveryTag, true)
}
