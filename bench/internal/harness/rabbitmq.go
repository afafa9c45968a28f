package harness

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// amqpWindow is how many unconfirmed publishes a raw sender keeps in flight
// before it waits for the older half of them.
const amqpWindow = 512

// amqpPublishChannels is how many confirm-mode channels the raw senders of
// a topic share, as many as busline's rabbitmq transport uses by default.
const amqpPublishChannels = 4

// amqpPrefetch and amqpAckBatch are the raw consumer's basic.qos and how
// many deliveries it acks at once (multiple=true), or fewer when no more
// are buffered.
const (
	amqpPrefetch = 256
	amqpAckBatch = 64
)

// openRabbitMQ opens the RabbitMQ ways: amqp091-go with async publisher
// confirms and batched acks (raw), the same waiting for each publish's
// confirm (raw-sync), watermill-amqp's durable pub/sub config
// (watermill), and busline's rabbitmq transport.
func openRabbitMQ(ctx context.Context, c *Config, _ string) (*plugin, error) {
	rawURL := c.RabbitMQURL
	if rawURL == "" {
		rawURL = os.Getenv(rabbitmq.EnvURL)
	}
	if rawURL == "" {
		rawURL = rabbitmq.DefaultURL
	}
	shown := redact(rawURL)
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ at %s: %s (start it with `make brokers`, or set %s)", shown, redactText(err.Error(), rawURL), rabbitmq.EnvURL)
	}
	p := &plugin{closers: []func() error{conn.Close}, ways: map[string]way{}}
	version, _ := conn.Properties["version"].(string)
	p.describe = fmt.Sprintf("RabbitMQ %s at %s", version, shown)
	cleanup := func(ctx context.Context, topics []string, queues []string) error {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		defer func() { _ = ch.Close() }()
		var errs []error
		for _, q := range queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				errs = append(errs, err)
			}
		}
		for _, t := range topics {
			if err := ch.ExchangeDelete(t, false, false); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}

	prepRaw := func(s spec, syncPublish bool) (topic, error) {
		t := &amqpTopic{conn: conn, spec: s, exchange: s.topic, queue: s.topic + ":" + s.group, syncPublish: syncPublish}
		ch, err := conn.Channel()
		if err != nil {
			return nil, err
		}
		defer func() { _ = ch.Close() }()
		if err := ch.ExchangeDeclare(t.exchange, "fanout", true, false, false, false, nil); err != nil {
			return nil, err
		}
		if _, err := ch.QueueDeclare(t.queue, true, false, false, false, nil); err != nil {
			return nil, err
		}
		if err := ch.QueueBind(t.queue, "", t.exchange, false, nil); err != nil {
			return nil, err
		}
		t.cleanup = func(ctx context.Context) error {
			return cleanup(ctx, []string{t.exchange}, []string{t.queue})
		}
		return t, nil
	}
	p.ways[WayRaw] = wayFuncs{prep: func(_ context.Context, s spec) (topic, error) { return prepRaw(s, false) }}
	p.ways[WayRawSync] = wayFuncs{prep: func(_ context.Context, s spec) (topic, error) { return prepRaw(s, true) }}

	wmPub, err := wmamqp.NewPublisher(wmamqp.NewDurablePubSubConfig(rawURL, nil), watermill.NopLogger{})
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("watermill-amqp publisher: %s", redactText(err.Error(), rawURL))
	}
	p.ways[WayWatermill] = wayFuncs{
		prep: func(_ context.Context, s spec) (topic, error) {
			cfg := wmamqp.NewDurablePubSubConfig(rawURL, wmamqp.GenerateQueueNameTopicNameWithSuffix(s.group))
			newSub := func() (message.Subscriber, error) { return wmamqp.NewSubscriber(cfg, watermill.NopLogger{}) }
			sub, err := wmamqp.NewSubscriber(cfg, watermill.NopLogger{})
			if err != nil {
				return nil, err
			}
			err = sub.SubscribeInitialize(s.topic)
			_ = sub.Close()
			if err != nil {
				return nil, err
			}
			return &routerTopic{spec: s, pub: wmPub, newSub: newSub, cleanup: func(ctx context.Context) error {
				return cleanup(ctx, []string{s.topic}, []string{wmamqp.GenerateQueueNameTopicNameWithSuffix(s.group)(s.topic)})
			}}, nil
		},
		closeFn: wmPub.Close,
	}

	bt, err := rabbitmq.New(ctx, rabbitmq.Config{URL: transports.SecretURL(rawURL), Logger: quiet, ConnectionName: "busline-bench"})
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("busline rabbitmq transport: %w", err)
	}
	if err := p.addBuslineWays(bt, func(topics []string, group string) func(context.Context) error {
		return buslineCleanupFor(cleanup, topics, group)
	}); err != nil {
		_ = p.close()
		return nil, err
	}
	return p, nil
}

// buslineCleanupFor deletes the exchanges and group queues busline's
// rabbitmq transport declared for topics.
func buslineCleanupFor(cleanup func(context.Context, []string, []string) error, topics []string, group string) func(context.Context) error {
	return func(ctx context.Context) error {
		var exchanges, queues []string
		for _, t := range topics {
			exchanges = append(exchanges, rabbitmq.ExchangeName(t))
			queues = append(queues, rabbitmq.QueueName(t, group))
		}
		return cleanup(ctx, exchanges, queues)
	}
}

// amqpTopic is the raw RabbitMQ way on one fanout exchange and the group's
// durable queue. With syncPublish its senders wait for each publish's
// confirm before the next (raw-sync).
type amqpTopic struct {
	conn            *amqp.Connection
	spec            spec
	exchange, queue string
	syncPublish     bool
	cleanup         func(context.Context) error

	mu      sync.Mutex
	chans   []*amqp.Channel // confirm-mode publishing channels, up to amqpPublishChannels
	senders int
}

// newSender returns a sender on one of the topic's shared confirm-mode
// channels.
func (t *amqpTopic) newSender(context.Context) (sender, error) {
	ch, err := t.channel()
	if err != nil {
		return nil, err
	}
	if t.syncPublish {
		return syncSender(func(ctx context.Context, sentAt int64) error {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, t.exchange, "", false, false, t.publishing(sentAt))
			if err != nil {
				return err
			}
			return waitConfirm(ctx, dc)
		}), nil
	}
	return &amqpSender{ch: ch, t: t}, nil
}

// channel returns the next of the topic's shared confirm-mode channels in
// turn, opening it on first use.
func (t *amqpTopic) channel() (*amqp.Channel, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := t.senders % amqpPublishChannels
	t.senders++
	if i < len(t.chans) {
		return t.chans[i], nil
	}
	ch, err := t.conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	t.chans = append(t.chans, ch)
	return ch, nil
}

// publishing is the persistent message of sentAt.
func (t *amqpTopic) publishing(sentAt int64) amqp.Publishing {
	return amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  "application/octet-stream",
		Body:         rawPayload(t.spec.payloadSize, sentAt),
	}
}

// waitConfirm waits for the broker's confirm of one publish.
func waitConfirm(ctx context.Context, dc *amqp.DeferredConfirmation) error {
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("RabbitMQ nacked a publish")
	}
	return nil
}

func (t *amqpTopic) consume(_ context.Context, handle func(int64)) (func() error, error) {
	var (
		chans []*amqp.Channel
		wg    sync.WaitGroup
	)
	stop := func() error {
		var errs []error
		for _, ch := range chans {
			errs = append(errs, ch.Close())
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	for range t.spec.consumers {
		ch, err := t.conn.Channel()
		if err != nil {
			_ = stop()
			return nil, err
		}
		chans = append(chans, ch)
		if err := ch.Qos(amqpPrefetch, 0, false); err != nil {
			_ = stop()
			return nil, err
		}
		deliveries, err := ch.Consume(t.queue, "", false, false, false, false, nil)
		if err != nil {
			_ = stop()
			return nil, err
		}
		wg.Go(func() {
			unacked := 0
			for d := range deliveries {
				if sentAt, err := readSentAt(d.Body); err == nil {
					handle(sentAt)
				}
				unacked++
				if unacked >= amqpAckBatch || len(deliveries) == 0 {
					if err := d.Ack(true); err != nil {
						return
					}
					unacked = 0
				}
			}
		})
	}
	return stop, nil
}

func (t *amqpTopic) close(ctx context.Context) error {
	t.mu.Lock()
	for _, ch := range t.chans {
		_ = ch.Close()
	}
	t.chans = nil
	t.mu.Unlock()
	return t.cleanup(ctx)
}

// amqpSender publishes on a shared confirm-mode channel, keeping up to
// amqpWindow of its publishes unconfirmed.
type amqpSender struct {
	ch      *amqp.Channel
	t       *amqpTopic
	pending []*amqp.DeferredConfirmation
}

func (s *amqpSender) send(ctx context.Context, sentAt int64) error {
	dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, s.t.exchange, "", false, false, s.t.publishing(sentAt))
	if err != nil {
		return err
	}
	s.pending = append(s.pending, dc)
	if len(s.pending) >= amqpWindow {
		return s.wait(ctx, amqpWindow/2)
	}
	return nil
}

// wait waits for the confirms of the n oldest pending publishes.
func (s *amqpSender) wait(ctx context.Context, n int) error {
	for _, dc := range s.pending[:n] {
		if err := waitConfirm(ctx, dc); err != nil {
			return err
		}
	}
	s.pending = append(s.pending[:0], s.pending[n:]...)
	return nil
}

func (s *amqpSender) flush(ctx context.Context) error { return s.wait(ctx, len(s.pending)) }

func (s *amqpSender) close() error { return nil } // the topic closes the channel

// redact returns rawURL with its password replaced by "xxxxx".
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// redactText removes rawURL's password from s, which a client library may
// have copied from the URL.
func redactText(s, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return s
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		s = strings.ReplaceAll(s, rawURL, u.Redacted())
		s = strings.ReplaceAll(s, pw, "xxxxx")
	}
	return s
}
