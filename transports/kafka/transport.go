package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
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
	transports.Register(Kind, transports.Configured(configFor,
		func(c *Config) error { c.setDefaults(""); return c.Validate() }, // configFor set the client id
		func(ctx context.Context, c Config) (transports.Transport, error) { return New(ctx, c) }))
}

// configFor is the Config the registry opens for p: its section, with the
// client id of p's service and p's logger.
func configFor(p transports.OpenParams) (Config, error) {
	var cfg Config
	if err := p.DecodeSection(&cfg); err != nil {
		return cfg, err
	}
	if cfg.ClientID == "" {
		cfg.ClientID = p.Service
	}
	if cfg.Logger == nil {
		cfg.Logger = p.Logger
	}
	return cfg, nil
}

// Transport is a connection to a Kafka cluster through franz-go. The zero
// value is not usable; call New. It is safe for concurrent use.
type Transport struct {
	cfg     Config
	base    []kgo.Opt // shared by every client: brokers, identity, SASL, TLS
	logger  *slog.Logger
	secrets []string

	cl    *kgo.Client // the producer, and admin requests that may create topics
	admin *kgo.Client // admin requests that must not create topics (Inspector)

	// solo produces, one record at a time, the records that a broker
	// refused together with another (see produceRecords); created on
	// first use, guarded by mu.
	solo     *kgo.Client
	soloTurn chan struct{} // a token: one solo record in flight

	mu     sync.Mutex
	topics map[string]bool // topics known to exist
	subs   map[*subscriber]struct{}
	movers map[string]*mover // destination topic → its mover, started once it has wait topics
	closed chan struct{}
	once   sync.Once

	provisioned map[string]bool // topic and Kafka group whose start offsets were committed

	discover   chan struct{} // asks the discovery loop to look for wait topics now
	discovered chan struct{} // closed when the discovery loop ended
}

var (
	_ transports.Transport        = (*Transport)(nil)
	_ transports.GroupProvisioner = (*Transport)(nil)
	_ transports.GroupRemover     = (*Transport)(nil)
	_ transports.Delayer          = (*Transport)(nil)
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
		movers: map[string]*mover{},
		closed: make(chan struct{}),

		provisioned: map[string]bool{},

		discover:   make(chan struct{}, 1),
		discovered: make(chan struct{}),
		soloTurn:   make(chan struct{}, 1),
	}
	if t.logger == nil {
		t.logger = slog.Default()
	}
	if cfg.SASL.Password != "" {
		t.secrets = []string{cfg.SASL.Password.Reveal()}
	}
	base, err := cfg.clientOpts()
	if err != nil {
		return nil, t.redact(err)
	}
	t.base = append(base, kgo.WithLogger(kgoLogger{t.logger}))
	cl, err := kgo.NewClient(append(t.opts(), cfg.producerOpts()...)...)
	if err != nil {
		return nil, t.redact(fmt.Errorf("kafka transport: %w", err))
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, t.connError(err)
	}
	// Inspector reads topics just created: a metadata cache of 10ms at
	// most, not the shared MetadataMinAge, or a topic looked up before it
	// existed stays missing for a second.
	admin, err := kgo.NewClient(append(t.opts(), kgo.MetadataMinAge(10*time.Millisecond))...)
	if err != nil {
		cl.Close()
		return nil, t.redact(fmt.Errorf("kafka transport: %w", err))
	}
	t.cl, t.admin = cl, admin
	go t.discoverWaitTopics()
	return t, nil
}

// opts returns a copy of the shared client options, to append to.
func (t *Transport) opts() []kgo.Opt { return append([]kgo.Opt(nil), t.base...) }

// Config returns the configuration in use, defaults applied. Print it with
// %v: its String method leaves the password out.
func (t *Transport) Config() Config { return t.cfg }

// Publisher returns a publisher whose Publish returns once every in-sync
// replica has the messages. Publishers share one idempotent producer, which
// pipelines the requests of concurrent publishes.
func (t *Transport) Publisher() (message.Publisher, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	return &publisher{t: t}, nil
}

// Subscriber returns a subscriber consuming as the busline group named
// group: on a topic, as the Kafka consumer group KafkaGroup(topic, group).
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

// Features reports persistent delivery, ordered per key, native delays up
// to MaxDelay and messages up to Config.MaxMessageBytes.
func (t *Transport) Features() transports.Features {
	return transports.Features{Persistent: true, OrderedPerKey: true, NativeDelay: true, MaxDelay: MaxDelay, MaxMessageBytes: t.cfg.MaxMessageBytes}
}

// Health returns nil when a broker answers and every consumer group of this
// transport is joined or joining. It returns ErrClosed after Close, an error
// wrapping ErrUnreachable or ErrAuthentication when the brokers cannot be
// used, and one wrapping ErrGroupNotJoined when a group failed to join.
func (t *Transport) Health(ctx context.Context) error {
	if t.isClosed() {
		return ErrClosed
	}
	if err := t.cl.Ping(ctx); err != nil {
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
// allows) and commits, for group's Kafka consumer group on it
// (KafkaGroup), the start of each partition on which it has no committed
// offset: where a group without offsets starts anyway, so the group
// receives every message published from now on and those already on the
// topic, and Groups lists it before it consumed anything. A group with
// members refuses such a commit; its members commit as they consume.
func (t *Transport) ProvisionGroup(ctx context.Context, topic, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	if err := t.ensureTopic(ctx, topic); err != nil {
		return err
	}
	return t.commitStart(ctx, topic, KafkaGroup(topic, group))
}

// commitStart commits, for the Kafka group k, the start offset of each
// partition of topic where k has none, once per topic and group.
func (t *Transport) commitStart(ctx context.Context, topic, k string) error {
	key := topic + "\x00" + k
	t.mu.Lock()
	done := t.provisioned[key]
	t.mu.Unlock()
	if done {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("kafka transport: provision group %s on %q: %w", k, topic, t.connError(err))
	}
	adm := kadm.NewClient(t.admin)
	// A topic just created may take a moment to show in the metadata (and
	// in the admin client's 10ms cache): wait for one the transport knows.
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 20 * time.Millisecond
	td, err := backoff.Retry(ctx, func() (kadm.TopicDetail, error) {
		topics, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return kadm.TopicDetail{}, backoff.Permanent(err)
		}
		td, ok := topics[topic]
		if !ok {
			td.Err = kerr.UnknownTopicOrPartition
		}
		if errors.Is(td.Err, kerr.UnknownTopicOrPartition) && !t.knownTopic(topic) {
			return td, backoff.Permanent(td.Err)
		}
		return td, td.Err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(5*time.Second))
	if errors.Is(err, kerr.UnknownTopicOrPartition) && !t.knownTopic(topic) {
		return nil // not created (create_topics: false): nothing to mark yet
	} else if err != nil {
		return fail(err)
	}
	fetched, err := adm.FetchOffsets(ctx, k)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fail(err)
	}
	var missing []int32
	for p := range td.Partitions {
		if o, ok := fetched.Lookup(topic, p); !ok || o.Err != nil || o.At < 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return fail(err)
		}
		if err := starts.Error(); err != nil {
			return fail(err)
		}
		offsets := kadm.Offsets{}
		for _, p := range missing {
			if s, ok := starts.Lookup(topic, p); ok {
				offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: s.Offset, LeaderEpoch: -1})
			}
		}
		resp, err := adm.CommitOffsets(ctx, k, offsets)
		if err == nil {
			err = resp.Error()
		}
		var ke *kerr.Error
		if errors.As(err, &ke) {
			// The group has members (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
			// REBALANCE_IN_PROGRESS) or no right to commit: its members
			// commit as they consume. Try again next time.
			t.logger.Debug("kafka: group's start offsets not committed", "kafka_group", k, "topic", topic, "err", err)
			return nil
		} else if err != nil {
			return fail(err)
		}
	}
	t.mu.Lock()
	t.provisioned[key] = true
	t.mu.Unlock()
	return nil
}

// RemoveGroup deletes the Kafka consumer group that group uses on topic
// (KafkaGroup) with its committed offsets. The Kafka group of a main topic
// is group itself and spans the group's main topics, so use RemoveGroup for
// groups private to one topic, such as busctl's tail groups. The broker
// refuses while the group has members, so RemoveGroup retries until the
// members left (close the group's subscriptions first) or ctx ends.
// Removing a group that does not exist succeeds.
func (t *Transport) RemoveGroup(ctx context.Context, topic, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	id := KafkaGroup(topic, group)
	var busy error // the broker's last refusal while the group had members
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{id}
		resp, err := req.RequestWith(ctx, t.cl)
		if err == nil && len(resp.Groups) > 0 {
			err = kerr.ErrorForCode(resp.Groups[0].ErrorCode)
		}
		switch {
		case err == nil || errors.Is(err, kerr.GroupIDNotFound):
			return struct{}{}, nil
		case errors.Is(err, kerr.NonEmptyGroup):
			busy = err
			return struct{}{}, err
		default:
			return struct{}{}, backoff.Permanent(err)
		}
	}, backoff.WithBackOff(removeBackOff()), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		t.mu.Lock()
		for key := range t.provisioned {
			if strings.HasSuffix(key, "\x00"+id) {
				delete(t.provisioned, key) // provisioning it again commits again
			}
		}
		t.mu.Unlock()
		return nil
	case ctx.Err() != nil && busy != nil:
		return fmt.Errorf("kafka transport: delete consumer group %s: it still has members: %w", id, ctx.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("kafka transport: delete consumer group %s: %w", id, ctx.Err())
	default:
		return t.redact(fmt.Errorf("kafka transport: delete consumer group %s: %w", id, err))
	}
}

// removeBackOff paces RemoveGroup's retries while the group has members:
// 100ms doubling to 2s, with jitter.
func removeBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.Multiplier = 2
	return b
}

// Close stops every subscription and mover, and closes the producer and the
// connections. It is idempotent. Messages in flight and not acked are
// redelivered to their group later.
func (t *Transport) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		close(t.closed)
		subs := t.subs
		t.subs = map[*subscriber]struct{}{}
		t.mu.Unlock()
		for s := range subs {
			s.close()
		}
		t.mu.Lock()
		movers := t.movers
		t.movers = map[string]*mover{}
		t.mu.Unlock()
		for _, m := range movers {
			m.stop()
		}
		<-t.discovered
		t.cl.Close()
		t.admin.Close()
		t.mu.Lock()
		solo := t.solo
		t.mu.Unlock()
		if solo != nil {
			solo.Close()
		}
	})
	return nil
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

// Retention of the topics the transport creates beside the main topics, so
// that the broker's default (7 days) never drops a message that still waits.
const (
	poisonRetention = -1                  // kept until replayed or purged
	laneRetention   = 14 * 24 * time.Hour // a retry lane: due messages, consumed at once
	waitMargin      = 7 * 24 * time.Hour  // a wait topic keeps a record its delay plus this
)

// ensureTopic creates topic when it is missing and creation is allowed:
// main topics with Config.Partitions, lanes and wait topics with one
// partition and their own retention.
func (t *Transport) ensureTopic(ctx context.Context, topic string) error {
	if !*t.cfg.CreateTopics {
		return nil
	}
	t.mu.Lock()
	known := t.topics[topic]
	t.mu.Unlock()
	if known {
		return nil
	}
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = t.cfg.Partitions
	rt.ReplicationFactor = t.cfg.ReplicationFactor
	config := func(k, v string) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, &v
		rt.Configs = append(rt.Configs, c)
	}
	switch _, level, isWait := parseWaitTopic(topic); {
	case isWait:
		rt.NumPartitions = 1
		config("retention.ms", strconv.FormatInt((level+waitMargin).Milliseconds(), 10))
		config("message.timestamp.type", "LogAppendTime")
	case strings.HasSuffix(topic, wire.LanePoisonSuffix):
		rt.NumPartitions = 1
		config("retention.ms", strconv.Itoa(poisonRetention))
	case wire.IsLane(topic):
		rt.NumPartitions = 1
		config("retention.ms", strconv.FormatInt(laneRetention.Milliseconds(), 10))
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{rt}
	req.TimeoutMillis = int32(t.cfg.DialTimeout.Milliseconds())
	resp, err := req.RequestWith(ctx, t.cl)
	if err == nil && len(resp.Topics) > 0 {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("kafka transport: create topic %q: %w (create it yourself, or allow creation with transport.kafka.create_topics: true)", topic, t.connError(err))
	}
	t.mu.Lock()
	t.topics[topic] = true
	t.mu.Unlock()
	return nil
}

// connError explains an error from talking to the brokers.
func (t *Transport) connError(err error) error {
	err = t.redact(err)
	var kerrErr *kerr.Error
	isKerr := errors.As(err, &kerrErr)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) || strings.Contains(err.Error(), "SASL"):
		return fmt.Errorf("%w: brokers %v rejected user %q with mechanism %s (check transport.kafka.sasl.username and password): %w",
			ErrAuthentication, t.cfg.Brokers, t.cfg.SASL.Username, t.cfg.SASL.Mechanism, err)
	case isKerr:
		return fmt.Errorf("kafka transport: brokers %v: %w", t.cfg.Brokers, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("%w at %v before the context ended (is Kafka running? for development run `go run ./cmd/devkafka`, then set transport.kafka.brokers or %s): %w",
			ErrUnreachable, t.cfg.Brokers, EnvBrokers, err)
	case t.cfg.SASL.Mechanism != "" && !errors.Is(err, syscall.ECONNREFUSED) && t.anyBrokerListens():
		// Some brokers (kfake among them) close the connection on bad
		// credentials instead of answering with an error.
		return fmt.Errorf("%w: brokers %v accept connections but closed them during SASL %s authentication of user %q (check transport.kafka.sasl.username and password, and the tls settings): %w",
			ErrAuthentication, t.cfg.Brokers, t.cfg.SASL.Mechanism, t.cfg.SASL.Username, err)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, kgo.ErrClientClosed) || isNetErr(err):
		return fmt.Errorf("%w at %v (is Kafka running? for development run `go run ./cmd/devkafka`, then set transport.kafka.brokers or %s): %w",
			ErrUnreachable, t.cfg.Brokers, EnvBrokers, err)
	default:
		return fmt.Errorf("kafka transport: brokers %v: %w", t.cfg.Brokers, err)
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
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
