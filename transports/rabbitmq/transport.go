package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports"
)

// Kind is the name the RabbitMQ transport registers under.
const Kind = "rabbitmq"

// ErrClosed is returned when publishing or subscribing through a closed
// transport, publisher or subscriber.
var ErrClosed = errors.New("rabbitmq transport: closed")

func init() {
	transports.Register(Kind, transports.Configured(configFor,
		func(c *Config) error { c.setDefaults(); return redactError(c.Validate(), c.URL.Reveal()) },
		func(ctx context.Context, c Config) (transports.Transport, error) { return New(ctx, c) }))
}

// configFor is the Config the registry opens for p: its section, named
// after the service of p and logging to its logger.
func configFor(p transports.OpenParams) (Config, error) {
	var cfg Config
	if err := p.DecodeSection(&cfg); err != nil {
		return cfg, err
	}
	if cfg.ConnectionName == "" {
		cfg.ConnectionName = p.Service
	}
	if cfg.Logger == nil {
		cfg.Logger = p.Logger
	}
	return cfg, nil
}

// Transport is a connection to RabbitMQ: one AMQP connection for
// publishing and one for consuming, each reconnecting on its own. It is
// safe for concurrent use. Create it with New or transports.Open.
type Transport struct {
	cfg         *Config
	pubConn     *connection
	consumeConn *connection
	pool        *publishPool

	closing chan struct{}
	wg      sync.WaitGroup // consumers
	once    sync.Once
	err     error
}

var (
	_ transports.Transport         = (*Transport)(nil)
	_ transports.GroupProvisioner  = (*Transport)(nil)
	_ transports.GroupRemover      = (*Transport)(nil)
	_ transports.Delayer           = (*Transport)(nil)
	_ transports.ConsumerTimeouter = (*Transport)(nil)
)

// New validates cfg, applies its defaults and connects to the broker. It
// fails at once, with an error that says what to check and never shows the
// password, if the URL is malformed, the broker is unreachable or refuses
// the credentials; ctx bounds the connection attempt. Later connection
// losses are recovered from in the background.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, redactError(fmt.Errorf("rabbitmq: invalid config: %w", err), cfg.URL.Reveal())
	}
	pub, err := dialConnection(ctx, &cfg, "publish")
	if err != nil {
		return nil, err
	}
	consume, err := dialConnection(ctx, &cfg, "consume")
	if err != nil {
		_ = pub.close()
		return nil, err
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = defaultMaxMessageBytes(pub.serverVersion())
	}
	return &Transport{
		cfg:         &cfg,
		pubConn:     pub,
		consumeConn: consume,
		pool:        newPublishPool(&cfg, pub),
		closing:     make(chan struct{}),
	}, nil
}

// Config returns the configuration in use, defaults applied.
func (t *Transport) Config() Config { return *t.cfg }

// ConsumerTimeout returns the broker's consumer_timeout as configured
// (Config.ConsumerTimeout): the longest a delivery may stay unacked, its
// handler's attempts, retries and lane write included, before RabbitMQ
// takes it back. A per-attempt timeout times the attempts should stay below
// it.
func (t *Transport) ConsumerTimeout() time.Duration { return t.cfg.ConsumerTimeout }

// Publisher returns a publisher whose Publish returns once RabbitMQ
// confirmed the messages. Publishers share the transport's channels;
// closing one releases only the handle.
func (t *Transport) Publisher() (message.Publisher, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	return &publisher{t: t}, nil
}

// Subscriber returns a subscriber consuming as group: from the queue
// QueueName(topic, group) of every topic it subscribes to.
func (t *Transport) Subscriber(group string) (message.Subscriber, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	if group == "" {
		return nil, errors.New("rabbitmq transport: empty consumer group name (every subscriber consumes as a named group)")
	}
	return &subscriber{
		t:       t,
		group:   group,
		closing: make(chan struct{}),
		nacks:   newNackBackoff(t.cfg.NackDelay, t.cfg.NackDelayMax),
	}, nil
}

// Features reports persistent delivery, ordered per key for a single
// consumer, native delays (PublishDelayed) of up to MaxDelay, and
// Config.MaxMessageBytes.
func (t *Transport) Features() transports.Features {
	return transports.Features{Persistent: true, OrderedPerKey: true, NativeDelay: true, MaxDelay: MaxDelay, MaxMessageBytes: t.cfg.MaxMessageBytes}
}

// checkSize refuses, before anything is sent, a message over
// Config.MaxMessageBytes, on every topic: a lane write refused so is how
// the bus learns that a failure record does not fit next to the message
// (it then writes a shorter one, or leaves the message on its topic).
func (t *Transport) checkSize(msgs []*message.Message) error {
	return transports.CheckSize(t.cfg.MaxMessageBytes, maxMessageBytesHint, msgs...)
}

// Health returns nil when both connections are open and a channel can be
// opened on each, or an error that says what is wrong: a connection down,
// the broker blocking one for a resource alarm (wrapping ErrBlocked, with
// the broker's reason), or no answer by ctx's deadline.
func (t *Transport) Health(ctx context.Context) error {
	if t.isClosed() {
		return ErrClosed
	}
	for _, c := range []*connection{t.pubConn, t.consumeConn} {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		if conn == nil || conn.IsClosed() {
			return fmt.Errorf("rabbitmq: %s connection to %s is down, reconnecting", c.role, t.cfg.URL.String())
		}
		if err := c.blockedError(); err != nil {
			return err
		}
		if _, err := c.do(ctx, nil); err != nil {
			return redactError(err, t.cfg.URL.Reveal())
		}
	}
	return nil
}

// ProvisionGroup declares topic's exchange and group's queue and binds them,
// so that messages published from now on are kept for the group, even while
// none of its consumers runs. It is idempotent. The queue of one of group's
// lanes (wire.RetryTopic, wire.PoisonTopic) never expires, and
// publishes to the lane through this transport declare it again on each new
// connection.
func (t *Transport) ProvisionGroup(ctx context.Context, topic, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	if _, err := t.pubConn.do(ctx, func(ch *amqp.Channel) error { return declareGroup(ch, t.cfg, topic, group) }); err != nil {
		return fmt.Errorf("rabbitmq: provision group %s on %s: %w", group, topic, err)
	}
	if isLaneOf(topic, group) {
		t.pool.addLane(topic, group)
	}
	return nil
}

// RemoveGroup deletes group's queue on topic with the messages it holds.
// Close the group's subscriptions first: RabbitMQ deletes a queue under a
// consumer, and the consumer declares it again. Removing a queue that does
// not exist succeeds.
func (t *Transport) RemoveGroup(ctx context.Context, topic, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	_, err := t.pubConn.do(ctx, func(ch *amqp.Channel) error {
		if _, err := ch.QueueDelete(QueueName(topic, group), false, false, false); err != nil {
			return topologyError(fmt.Sprintf("delete queue %q", QueueName(topic, group)), err, "")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rabbitmq: remove group %s on %s: %w", group, topic, err)
	}
	return nil
}

// Close stops every subscription, waits for the consumers to return, and
// closes the connections. Unacked messages go back to their queues. It is
// idempotent. A broker that does not answer (the network drops, or it
// stalls) holds it up about 4 s at most: 2 s for the consumers' channels,
// 2 s for the connections.
func (t *Transport) Close() error {
	t.once.Do(func() {
		close(t.closing)
		t.wg.Wait()
		t.pool.close()
		consumeErr := make(chan error, 1)
		go func() { consumeErr <- t.consumeConn.close() }() // both at once: each may wait closeWait for the broker
		pubErr := t.pubConn.close()
		t.err = errors.Join(<-consumeErr, pubErr)
	})
	return t.err
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}
