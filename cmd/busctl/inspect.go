package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/busline/busline/internal/redact"

	amqp "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	saslplain "github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/transports/rabbitmq"
	"github.com/busline/busline/transports/redis"
	"github.com/busline/busline/wire"
)

// groupInspector reads which groups a transport has provisioned, creating
// and changing nothing on the broker. busctl checks a lane through it
// before it works the lane, since working a lane provisions its group. A
// transport that is a transports.Inspector is used through its Groups
// (inspectorOf); busctl inspects the others itself (inspectorFor).
type groupInspector interface {
	// GroupExists reports whether group is provisioned on topic: its queue
	// (RabbitMQ), its consumer group (Redis), or for a lane topic on Kafka
	// the lane's topic.
	GroupExists(ctx context.Context, topic, group string) (bool, error)

	// Groups returns the groups provisioned on topic, sorted, or an error
	// matching errNotListable where the broker cannot list them (AMQP 0-9-1
	// has no operation that lists queues).
	Groups(ctx context.Context, topic string) ([]string, error)

	// TopicExists reports whether topic exists on the broker: its stream
	// (Redis), exchange (RabbitMQ) or topic (Kafka), made by the first
	// publish or subscription.
	TopicExists(ctx context.Context, topic string) (bool, error)
}

// errNotListable is returned by Groups where the broker cannot list groups.
var errNotListable = errors.New("the broker cannot list the groups of a topic")

// inspectorFor returns the inspector of t and a function that releases it,
// or a nil inspector for a transport busctl cannot inspect without writing.
//
// The brokers busline ships come first, whether or not they are a
// transports.Inspector: their inspectors here also tell whether a topic
// exists, which Inspector cannot (tail's check needs it).
func inspectorFor(ctx context.Context, t transports.Transport) (groupInspector, func(), error) {
	switch tt := t.(type) {
	case *redis.Transport:
		return redisInspector{tt}, func() {}, nil
	case *rabbitmq.Transport:
		ri, err := newRabbitInspector(ctx, tt.Config())
		if err != nil {
			return nil, nil, err
		}
		return ri, func() { _ = ri.conn.Close() }, nil
	case *kafka.Transport:
		ki, err := newKafkaInspector(tt.Config())
		if err != nil {
			return nil, nil, err
		}
		return ki, ki.client.Close, nil
	}
	if in, ok := t.(transports.Inspector); ok {
		return inspectorOf{in}, func() {}, nil
	}
	return nil, func() {}, nil
}

// checkLane returns nil when group's poison lane for topic exists, and
// otherwise an error naming the groups whose lane for topic does; it
// creates nothing. candidates are the groups to try where the broker cannot
// list groups (the config's subscriptions).
func checkLane(ctx context.Context, gi groupInspector, topic, group string, candidates []string) error {
	lane := wire.PoisonTopic(topic, group)
	ok, err := gi.GroupExists(ctx, lane, group)
	if err != nil {
		return fmt.Errorf("check that lane %s exists: %w (nothing was changed)", lane, err)
	}
	if ok {
		return nil
	}
	groups, err := gi.Groups(ctx, topic)
	listed := err == nil
	switch {
	case errors.Is(err, errNotListable):
		groups = candidates
	case err != nil:
		return fmt.Errorf("no poison lane %s, and listing the groups of topic %s failed: %w (nothing was changed)", lane, topic, err)
	}
	var with []string
	for _, g := range groups {
		if g == group {
			continue
		}
		ok, err := gi.GroupExists(ctx, wire.PoisonTopic(topic, g), g)
		if err != nil {
			return fmt.Errorf("check that lane %s exists: %w (nothing was changed)", wire.PoisonTopic(topic, g), err)
		}
		if ok {
			with = append(with, g)
		}
	}
	slices.Sort(with)
	msg := fmt.Sprintf("group %s has no poison lane for topic %s (%s does not exist; nothing was created)", group, topic, lane)
	switch {
	case len(with) > 0 && listed:
		return fmt.Errorf("%s; groups with a poison lane for topic %s: %s (check --group)", msg, topic, strings.Join(with, ", "))
	case len(with) > 0:
		return fmt.Errorf("%s; groups of the config with a poison lane for topic %s: %s (check --group)", msg, topic, strings.Join(with, ", "))
	case listed:
		return fmt.Errorf("%s; no group has a poison lane for topic %s: check --topic or --event (a group's lanes exist once it has subscribed)", msg, topic)
	}
	return fmt.Errorf("%s; none of the config's groups (%s) has a poison lane for topic %s: check --topic or --event (a group's lanes exist once it has subscribed)",
		msg, listOrNone(candidates), topic)
}

// inspectorOf is a transports.Inspector as a groupInspector.
type inspectorOf struct{ in transports.Inspector }

func (i inspectorOf) GroupExists(ctx context.Context, topic, group string) (bool, error) {
	groups, err := i.in.Groups(ctx, topic)
	return slices.Contains(groups, group), err
}

func (i inspectorOf) Groups(ctx context.Context, topic string) ([]string, error) {
	return i.in.Groups(ctx, topic)
}

// TopicExists is true: a transports.Inspector can tell a topic with no
// group from one that does not exist, where messages are kept, only through
// a method it does not have (see the package README).
func (i inspectorOf) TopicExists(context.Context, string) (bool, error) { return true, nil }

// checkTopic returns nil when topic exists on t's broker, or when busctl
// cannot tell without writing, and otherwise an error saying nothing was
// created.
func checkTopic(ctx context.Context, t transports.Transport, conn *connFlags, kind, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, conn.timeout)
	defer cancel()
	gi, release, err := inspectorFor(ctx, t)
	if err != nil {
		return unreachable(kind, conn, err)
	}
	defer release()
	if gi == nil {
		return nil
	}
	ok, err := gi.TopicExists(ctx, topic)
	switch {
	case err != nil:
		return fmt.Errorf("check that topic %s exists: %w (nothing was changed)", topic, err)
	case !ok:
		return fmt.Errorf("topic %s does not exist on the %s broker: nothing has been published to it or consumed from it, and nothing was created; check the name (a topic, or an event under topics: in %s), or pass --create to create it and wait for its first messages",
			topic, kind, conn.config)
	}
	return nil
}

// redisInspector reads consumer groups with XINFO GROUPS, which creates
// nothing.
type redisInspector struct{ t *redis.Transport }

func (r redisInspector) GroupExists(ctx context.Context, topic, group string) (bool, error) {
	groups, err := r.Groups(ctx, topic)
	return slices.Contains(groups, group), err
}

func (r redisInspector) Groups(ctx context.Context, topic string) ([]string, error) {
	infos, err := r.t.Client().XInfoGroups(ctx, r.t.Stream(topic)).Result()
	if err != nil {
		if isNoSuchKey(err) {
			return nil, nil
		}
		return nil, err
	}
	groups := make([]string, 0, len(infos))
	for _, g := range infos {
		groups = append(groups, g.Name)
	}
	slices.Sort(groups)
	return groups, nil
}

func (r redisInspector) TopicExists(ctx context.Context, topic string) (bool, error) {
	n, err := r.t.Client().Exists(ctx, r.t.Stream(topic)).Result()
	return n > 0, err
}

func isNoSuchKey(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && strings.Contains(re.Error(), "no such key")
}

// rabbitInspector checks queues with passive declares on a connection of
// its own, which create nothing; AMQP cannot list queues.
type rabbitInspector struct{ conn *amqp.Connection }

func newRabbitInspector(ctx context.Context, cfg rabbitmq.Config) (*rabbitInspector, error) {
	ac := amqp.Config{Properties: amqp.NewConnectionProperties()}
	ac.Properties.SetClientConnectionName("busctl-inspect")
	rawURL := string(cfg.URL) // a string, or a transports.SecretURL
	if strings.HasPrefix(rawURL, "amqps://") {
		tc, err := cfg.TLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		ac.TLSClientConfig = tc
	}
	if cfg.Auth == rabbitmq.AuthExternal {
		ac.SASL = []amqp.Authentication{&amqp.ExternalAuth{}}
	}
	type dialed struct {
		conn *amqp.Connection
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		conn, err := amqp.DialConfig(rawURL, ac)
		ch <- dialed{conn, err}
	}()
	select {
	case d := <-ch:
		if d.err != nil {
			return nil, redact.Error(d.err, redact.URLSecrets(rawURL)...)
		}
		return &rabbitInspector{conn: d.conn}, nil
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.conn != nil {
				_ = d.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func (r *rabbitInspector) GroupExists(_ context.Context, topic, group string) (bool, error) {
	ch, err := r.conn.Channel()
	if err != nil {
		return false, err
	}
	// A passive declare only checks; a missing queue closes the channel.
	_, err = ch.QueueDeclarePassive(rabbitmq.QueueName(topic, group), true, false, false, false, nil)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_ = ch.Close()
	return true, nil
}

func (r *rabbitInspector) TopicExists(_ context.Context, topic string) (bool, error) {
	ch, err := r.conn.Channel()
	if err != nil {
		return false, err
	}
	err = ch.ExchangeDeclarePassive(rabbitmq.ExchangeName(topic), amqp.ExchangeFanout, true, false, false, false, nil)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_ = ch.Close()
	return true, nil
}

func (r *rabbitInspector) Groups(context.Context, string) ([]string, error) {
	return nil, errNotListable
}

// kafkaInspector reads the topic list (a metadata request that does not
// create topics); a group's lane on Kafka is a topic of its own, the lane's
// consumer group being named after it.
type kafkaInspector struct{ client *kgo.Client }

func newKafkaInspector(cfg kafka.Config) (*kafkaInspector, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID("busctl-inspect")}
	if cfg.DialTimeout > 0 {
		opts = append(opts, kgo.DialTimeout(cfg.DialTimeout))
	}
	if cfg.TLS.On() {
		tc, err := cfg.TLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch s := cfg.SASL; strings.ToUpper(s.Mechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(saslplain.Auth{User: s.Username, Pass: string(s.Password)}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: string(s.Password)}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: string(s.Password)}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("sasl mechanism %q: busctl knows PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512", s.Mechanism)
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &kafkaInspector{client: client}, nil
}

// topics lists every topic of the cluster.
func (k *kafkaInspector) topics(ctx context.Context) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	req.Topics = nil // every topic
	resp, err := req.RequestWith(ctx, k.client)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	return names, nil
}

func (k *kafkaInspector) GroupExists(ctx context.Context, topic, group string) (bool, error) {
	if !wire.IsLane(topic) {
		groups, err := k.Groups(ctx, topic)
		return slices.Contains(groups, group), err
	}
	topics, err := k.topics(ctx)
	return slices.Contains(topics, topic), err
}

func (k *kafkaInspector) TopicExists(ctx context.Context, topic string) (bool, error) {
	topics, err := k.topics(ctx)
	return slices.Contains(topics, topic), err
}

// Groups returns the groups with a lane topic for topic, those that
// subscribed to it.
func (k *kafkaInspector) Groups(ctx context.Context, topic string) ([]string, error) {
	topics, err := k.topics(ctx)
	if err != nil {
		return nil, err
	}
	var groups []string
	for _, t := range topics {
		for _, suffix := range []string{wire.LanePoisonSuffix, wire.LaneRetrySuffix} {
			if g, ok := strings.CutSuffix(strings.TrimPrefix(t, topic+"."), suffix); ok && strings.HasPrefix(t, topic+".") && g != "" {
				groups = append(groups, g)
			}
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}
