package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

// Kind is the name the Kafka transport registers under.
const Kind = "kafka"

var (
	// ErrClosed is returned when publishing or subscribing through a closed
	// transport, publisher or subscriber.
	ErrClosed = errors.New("kafka transport: closed")

	// ErrUnreachable is wrapped by the error of New and Health when no
	// broker answers.
	ErrUnreachable = errors.New("kafka transport: no broker reachable")

	// ErrAuthentication is wrapped by the error of New and Health when the
	// brokers reject the SASL credentials.
	ErrAuthentication = errors.New("kafka transport: SASL authentication failed")

	// ErrGroupNotJoined is wrapped by the error of Health while a consumer
	// group cannot join.
	ErrGroupNotJoined = errors.New("kafka transport: consumer group cannot join")
)

func init() {
	transports.Register(Kind, func(ctx context.Context, p transports.OpenParams) (transports.Transport, error) {
		var cfg Config
		if err := p.DecodeSection(&cfg); err != nil {
			return nil, err
		}
		if cfg.ClientID == "" {
			cfg.ClientID = p.Service
		}
		if cfg.Logger == nil {
			cfg.Logger = p.Logger
		}
		return New(ctx, cfg)
	})
}

// Transport is a connection to a Kafka cluster. The zero value is not usable;
// call New. It is safe for concurrent use.
type Transport struct {
	cfg     Config
	sarama  *sarama.Config // shared by the producer and the admin client
	consume *sarama.Config // for consumer groups: not idempotent, pipelined
	logger  *slog.Logger
	secrets []string

	client  sarama.Client // metadata and admin
	adminMu sync.Mutex
	admin   sarama.ClusterAdmin

	mu       sync.Mutex
	producer sarama.SyncProducer
	topics   map[string]bool // topics known to exist
	subs     map[*subscriber]struct{}
	closed   chan struct{}
	once     sync.Once
}

var (
	_ transports.Transport        = (*Transport)(nil)
	_ transports.GroupProvisioner = (*Transport)(nil)
	_ transports.GroupRemover     = (*Transport)(nil)
)

// New connects to the brokers of cfg and returns a transport. It fails, with
// an error wrapping ErrUnreachable or ErrAuthentication, when no broker
// answers or the credentials are rejected, or when ctx ends first.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg.setDefaults("")
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:    cfg,
		logger: cfg.Logger,
		topics: map[string]bool{},
		subs:   map[*subscriber]struct{}{},
		closed: make(chan struct{}),
	}
	if t.logger == nil {
		t.logger = slog.Default()
	}
	if cfg.SASL.Password != "" {
		t.secrets = []string{cfg.SASL.Password}
	}
	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, t.redact(err)
	}
	t.sarama = sc
	cc := *sc
	cc.Producer.Idempotent = false
	cc.Net.MaxOpenRequests = 5
	cc.Consumer.Return.Errors = false // nothing reads them: Consume reports what matters
	t.consume = &cc

	client, err := runCtx(ctx, func() (sarama.Client, error) { return sarama.NewClient(cfg.Brokers, sc) },
		func(c sarama.Client) { _ = c.Close() })
	if err != nil {
		return nil, t.connError(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, t.connError(err)
	}
	t.client, t.admin = client, admin
	return t, nil
}

// Config returns the configuration in use, defaults applied. Print it with
// %v: its String method leaves the password out.
func (t *Transport) Config() Config { return t.cfg }

// Publisher returns a publisher whose Publish returns once every in-sync
// replica has the messages. Publishers share one idempotent producer.
func (t *Transport) Publisher() (message.Publisher, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	return &publisher{t: t}, nil
}

// Subscriber returns a subscriber consuming as the Kafka consumer group
// named group.
func (t *Transport) Subscriber(group string) (message.Subscriber, error) {
	if group == "" {
		return nil, errors.New("kafka transport: empty consumer group name (pass the busline group, e.g. \"billing\")")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	s := newSubscriber(t, group)
	t.subs[s] = struct{}{}
	return s, nil
}

// Features reports persistent delivery, ordered per key for a single
// consumer of a group, and no native delay.
func (t *Transport) Features() transports.Features {
	return transports.Features{Persistent: true, OrderedPerKey: true}
}

// Health returns nil when a broker answers and every consumer group of this
// transport is joined or joining. It returns ErrClosed after Close, an error
// wrapping ErrUnreachable or ErrAuthentication when the brokers cannot be
// used, and one wrapping ErrGroupNotJoined when a group failed to join.
func (t *Transport) Health(ctx context.Context) error {
	if t.isClosed() {
		return ErrClosed
	}
	if _, err := runCtx(ctx, func() (struct{}, error) { return struct{}{}, t.client.RefreshMetadata() }, nil); err != nil {
		return t.connError(err)
	}
	t.mu.Lock()
	subs := make([]*subscriber, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s.healthErr(); err != nil {
			errs = append(errs, fmt.Errorf("%w: group %q: %w", ErrGroupNotJoined, s.group, err))
		}
	}
	return errors.Join(errs...)
}

// ProvisionGroup creates topic if it is missing (when Config.CreateTopics
// allows). A consumer group without committed offsets starts at the oldest
// offset, so the group will receive every message published from now on,
// and also those already on the topic.
func (t *Transport) ProvisionGroup(ctx context.Context, topic, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	_, err := runCtx(ctx, func() (struct{}, error) { return struct{}{}, t.ensureTopic(topic) }, nil)
	return err
}

// RemoveGroup deletes the Kafka consumer group named group with its
// committed offsets. A Kafka group spans topics, so this forgets the group's
// position on every topic, not only topic: use it for groups private to one
// topic, such as busctl's tail groups. The broker refuses while the group
// has members, so RemoveGroup retries until the members left (close the
// group's subscriptions first) or ctx ends. Removing a group that does not
// exist succeeds.
func (t *Transport) RemoveGroup(ctx context.Context, _ string, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		t.adminMu.Lock()
		err := t.admin.DeleteConsumerGroup(group)
		t.adminMu.Unlock()
		if err == nil || errors.Is(err, sarama.ErrGroupIDNotFound) {
			return nil
		}
		if !errors.Is(err, sarama.ErrNonEmptyGroup) {
			return t.redact(fmt.Errorf("kafka transport: delete consumer group %s: %w", group, err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka transport: delete consumer group %s: it still has members: %w", group, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Close stops every subscription, flushes and closes the producer and the
// connections. It is idempotent. Messages in flight and not acked are
// redelivered to their group later.
func (t *Transport) Close() error {
	var errs []error
	t.once.Do(func() {
		t.mu.Lock()
		close(t.closed)
		subs := t.subs
		t.subs = map[*subscriber]struct{}{}
		producer := t.producer
		t.mu.Unlock()
		for s := range subs {
			s.close()
		}
		if producer != nil {
			errs = append(errs, producer.Close())
		}
		errs = append(errs, t.admin.Close()) // closes t.client too
	})
	return t.redact(errors.Join(errs...))
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

func (t *Transport) forget(s *subscriber) {
	t.mu.Lock()
	delete(t.subs, s)
	t.mu.Unlock()
}

// syncProducer returns the shared producer, creating it on first use.
func (t *Transport) syncProducer() (sarama.SyncProducer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	if t.producer == nil {
		p, err := sarama.NewSyncProducer(t.cfg.Brokers, t.sarama)
		if err != nil {
			return nil, t.connError(err)
		}
		t.producer = p
	}
	return t.producer, nil
}

// isLane reports whether topic is a failure-pipeline lane, scanned first in,
// first out by one consumer.
func isLane(topic string) bool {
	return strings.HasSuffix(topic, ".poison") || strings.Contains(topic, ".retry.")
}

// ensureTopic creates topic when it is missing and creation is allowed.
func (t *Transport) ensureTopic(topic string) error {
	if !*t.cfg.CreateTopics {
		return nil
	}
	t.mu.Lock()
	known := t.topics[topic]
	t.mu.Unlock()
	if known {
		return nil
	}
	detail := &sarama.TopicDetail{NumPartitions: t.cfg.Partitions, ReplicationFactor: t.cfg.ReplicationFactor}
	if isLane(topic) {
		detail.NumPartitions = 1
	}
	t.adminMu.Lock()
	err := t.admin.CreateTopic(topic, detail, false)
	t.adminMu.Unlock()
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("kafka transport: create topic %q: %w (create it yourself, or allow creation with transport.kafka.create_topics: true)", topic, t.redact(err))
	}
	t.mu.Lock()
	t.topics[topic] = true
	t.mu.Unlock()
	return nil
}

// connError explains an error from connecting to the brokers.
func (t *Transport) connError(err error) error {
	err = t.redact(err)
	switch {
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed) || errors.Is(err, sarama.ErrIllegalSASLState) ||
		errors.Is(err, sarama.ErrUnsupportedSASLMechanism) || strings.Contains(err.Error(), "scram:"):
		return fmt.Errorf("%w: brokers %v rejected user %q with mechanism %s (check transport.kafka.sasl.username and password): %w",
			ErrAuthentication, t.cfg.Brokers, t.cfg.SASL.Username, t.cfg.SASL.Mechanism, err)
	case t.cfg.SASL.Mechanism != "" && errors.Is(err, sarama.ErrOutOfBrokers) && t.anyBrokerListens():
		// Some brokers (kfake among them) close the connection on bad
		// credentials instead of answering with an error.
		return fmt.Errorf("%w: brokers %v accept connections but closed them during SASL %s authentication of user %q (check transport.kafka.sasl.username and password, and the tls settings): %w",
			ErrAuthentication, t.cfg.Brokers, t.cfg.SASL.Mechanism, t.cfg.SASL.Username, err)
	case errors.Is(err, sarama.ErrOutOfBrokers) || errors.Is(err, sarama.ErrClosedClient):
		return fmt.Errorf("%w at %v (is Kafka running? for development run `go run ./cmd/devkafka`, then set transport.kafka.brokers): %w",
			ErrUnreachable, t.cfg.Brokers, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("%w at %v before the context ended (is Kafka running? for development run `go run ./cmd/devkafka`): %w",
			ErrUnreachable, t.cfg.Brokers, err)
	default:
		return fmt.Errorf("kafka transport: brokers %v: %w", t.cfg.Brokers, err)
	}
}

// anyBrokerListens reports whether a TCP connection to a broker succeeds.
func (t *Transport) anyBrokerListens() bool {
	for _, b := range t.cfg.Brokers {
		conn, err := net.DialTimeout("tcp", b, time.Second)
		if err == nil {
			_ = conn.Close()
			return true
		}
	}
	return false
}

// runCtx runs fn, which cannot be cancelled, and returns early when ctx ends;
// late, when not nil, then receives fn's successful result to release it.
func runCtx[T any](ctx context.Context, fn func() (T, error), late func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if late != nil {
			go func() {
				if r := <-done; r.err == nil {
					late(r.v)
				}
			}()
		}
		var zero T
		return zero, ctx.Err()
	}
}
