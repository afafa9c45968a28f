package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/busline/busline/transports/kafka"
)

// EnvKafkaBrokers is the environment variable read for Config.KafkaBrokers,
// comma-separated.
const EnvKafkaBrokers = "BUSLINE_KAFKA_BROKERS"

// kafkaPartitions is the partition count of every benchmark topic.
const kafkaPartitions = 3

// WayRawSarama is Kafka's second raw way: Sarama's async producer (leader
// acks, not idempotent: Sarama's defaults) and a Sarama consumer group. The
// Kafka WayRaw is franz-go, the client busline's transport is built on.
const WayRawSarama = "raw-sarama"

// openKafka opens the Kafka ways: franz-go's async producer (acks=all,
// idempotent) and a franz-go consumer group (raw), the same producing one
// record per ProduceSync without linger (raw-sync), Sarama's async producer
// and a consumer group (raw-sarama), watermill-kafka v3, and busline's kafka
// transport. Without brokers configured it starts an in-process kfake
// cluster, which then shares the process's CPU with the clients.
func openKafka(ctx context.Context, c *Config, _ string) (*plugin, error) {
	brokers := c.KafkaBrokers
	if len(brokers) == 0 && os.Getenv(EnvKafkaBrokers) != "" {
		brokers = strings.Split(os.Getenv(EnvKafkaBrokers), ",")
	}
	p := &plugin{ways: map[string]way{}}
	if len(brokers) == 0 {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(kafkaPartitions))
		if err != nil {
			return nil, fmt.Errorf("start kfake: %w", err)
		}
		p.closers = append(p.closers, func() error { cluster.Close(); return nil })
		brokers = cluster.ListenAddrs()
		p.describe = fmt.Sprintf("kfake (franz-go, in-process, 1 broker) at %s", strings.Join(brokers, ","))
	} else {
		p.describe = "Kafka at " + strings.Join(brokers, ",")
	}
	newConfig := func() *sarama.Config {
		sc := sarama.NewConfig()
		sc.Version = sarama.V2_8_0_0 // kfake needs it
		sc.ClientID = "busline-bench"
		return sc
	}
	admin, err := sarama.NewClusterAdmin(brokers, newConfig())
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("connect to Kafka at %s: %w (unset %s to use an in-process kfake)", strings.Join(brokers, ","), err, EnvKafkaBrokers)
	}
	p.closers = append(p.closers, admin.Close)
	create := func(topic string) error {
		err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: kafkaPartitions, ReplicationFactor: 1}, false)
		if errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return nil
		}
		return err
	}
	deleteTopics := func(topics ...string) func(context.Context) error {
		return func(context.Context) error {
			for _, t := range topics {
				_ = admin.DeleteTopic(t) // lanes that were never created do not exist
			}
			return nil
		}
	}
	consumerConfig := func() *sarama.Config {
		sc := newConfig()
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest // a new group reads what was published before it joined
		return sc
	}

	producerConfig := newConfig()
	producerConfig.Producer.Return.Successes = true
	producer, err := sarama.NewAsyncProducer(brokers, producerConfig)
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("sarama async producer: %w", err)
	}
	var dispatch sync.WaitGroup
	dispatch.Go(func() {
		for m := range producer.Successes() {
			m.Metadata.(*kafkaSender).done(nil)
		}
	})
	dispatch.Go(func() {
		for e := range producer.Errors() {
			e.Msg.Metadata.(*kafkaSender).done(e.Err)
		}
	})
	franz, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("busline-bench"))
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("franz-go producer: %w", err)
	}
	// Without linger, as busline's producer: a synchronous producer that
	// waits 10 ms (franz-go's default) for more records would measure the
	// linger.
	franzSync, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("busline-bench"), kgo.ProducerLinger(0))
	if err != nil {
		franz.Close()
		_ = p.close()
		return nil, fmt.Errorf("franz-go producer: %w", err)
	}
	prepFranz := func(ctx context.Context, s spec, producer *kgo.Client, syncPublish bool) (topic, error) {
		if err := create(s.topic); err != nil {
			return nil, err
		}
		t := &franzTopic{spec: s, brokers: brokers, producer: producer, syncPublish: syncPublish, cleanup: deleteTopics(s.topic)}
		// A first record loads the new topic's metadata, which franz-go
		// otherwise fetches on the clock, up to MetadataMinAge (5s) after
		// its last fetch. Consumers skip it as a warm-up message.
		if err := producer.ProduceSync(ctx, t.record(warmup)).FirstErr(); err != nil {
			_ = t.cleanup(ctx)
			return nil, fmt.Errorf("warm-up record: %w", err)
		}
		return t, nil
	}
	p.ways[WayRaw] = wayFuncs{
		prep:    func(ctx context.Context, s spec) (topic, error) { return prepFranz(ctx, s, franz, false) },
		closeFn: func() error { franz.Close(); return nil },
	}
	p.ways[WayRawSync] = wayFuncs{
		prep:    func(ctx context.Context, s spec) (topic, error) { return prepFranz(ctx, s, franzSync, true) },
		closeFn: func() error { franzSync.Close(); return nil },
	}
	p.ways[WayRawSarama] = wayFuncs{
		prep: func(_ context.Context, s spec) (topic, error) {
			if err := create(s.topic); err != nil {
				return nil, err
			}
			return &kafkaTopic{spec: s, brokers: brokers, producer: producer, config: consumerConfig, cleanup: deleteTopics(s.topic)}, nil
		},
		closeFn: func() error {
			err := producer.Close()
			dispatch.Wait()
			return err
		},
	}

	wmConfig := wmkafka.DefaultSaramaSyncPublisherConfig()
	wmConfig.Version = sarama.V2_8_0_0
	wmPub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: brokers, Marshaler: wmkafka.DefaultMarshaler{}, OverwriteSaramaConfig: wmConfig}, watermill.NopLogger{})
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("watermill-kafka publisher: %w", err)
	}
	p.ways[WayWatermill] = wayFuncs{
		prep: func(_ context.Context, s spec) (topic, error) {
			if err := create(s.topic); err != nil {
				return nil, err
			}
			return &routerTopic{spec: s, pub: wmPub, cleanup: deleteTopics(s.topic), newSub: func() (message.Subscriber, error) {
				sc := wmkafka.DefaultSaramaSubscriberConfig()
				sc.Version = sarama.V2_8_0_0
				sc.Consumer.Offsets.Initial = sarama.OffsetOldest
				return wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
					Brokers: brokers, Unmarshaler: wmkafka.DefaultMarshaler{}, ConsumerGroup: s.group, OverwriteSaramaConfig: sc,
				}, watermill.NopLogger{})
			}}, nil
		},
		closeFn: wmPub.Close,
	}

	bt, err := kafka.New(ctx, kafka.Config{Brokers: brokers, Partitions: kafkaPartitions, ClientID: "busline-bench", Logger: quiet})
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("busline kafka transport: %w", err)
	}
	if err := p.addBuslineWays(bt, func(topics []string, _ string) func(context.Context) error { return deleteTopics(topics...) }); err != nil {
		_ = p.close()
		return nil, err
	}
	return p, nil
}

// franzTopic is the raw Kafka way: franz-go's shared producer with its
// defaults (idempotent, acks=all, pipelined; records produced
// asynchronously, or with syncPublish one ProduceSync per record) and, to
// consume, a franz-go consumer group with its defaults
// (cooperative-sticky, autocommit of what was polled).
type franzTopic struct {
	spec        spec
	brokers     []string
	producer    *kgo.Client
	syncPublish bool
	cleanup     func(context.Context) error
}

func (t *franzTopic) newSender(context.Context) (sender, error) {
	if t.syncPublish {
		return syncSender(func(ctx context.Context, sentAt int64) error {
			return t.producer.ProduceSync(ctx, t.record(sentAt)).FirstErr()
		}), nil
	}
	return &franzSender{t: t}, nil
}

// record is the record of sentAt's message.
func (t *franzTopic) record(sentAt int64) *kgo.Record {
	return &kgo.Record{Topic: t.spec.topic, Value: rawPayload(t.spec.payloadSize, sentAt)}
}

func (t *franzTopic) consume(_ context.Context, handle func(int64)) (func() error, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.brokers...), kgo.ConsumerGroup(t.spec.group),
		kgo.ConsumeTopics(t.spec.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			if fetches.IsClientClosed() {
				return
			}
			fetches.EachRecord(func(r *kgo.Record) {
				if sentAt, err := readSentAt(r.Value); err == nil {
					handle(sentAt)
				}
			})
		}
	})
	return func() error {
		cancel()
		wg.Wait()
		cl.Close()
		return nil
	}, nil
}

func (t *franzTopic) close(ctx context.Context) error { return t.cleanup(ctx) }

// franzSender produces asynchronously; flush waits for the brokers'
// acknowledgement of each record.
type franzSender struct {
	t        *franzTopic
	inflight sync.WaitGroup
	mu       sync.Mutex
	err      error
}

func (s *franzSender) send(ctx context.Context, sentAt int64) error {
	s.inflight.Add(1)
	s.t.producer.Produce(ctx, s.t.record(sentAt), func(_ *kgo.Record, err error) {
		if err != nil {
			s.mu.Lock()
			s.err = cmpOr(s.err, err)
			s.mu.Unlock()
		}
		s.inflight.Done()
	})
	return nil
}

func (s *franzSender) flush(context.Context) error {
	s.inflight.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.err
	s.err = nil
	return err
}

func (s *franzSender) close() error { return nil }

// kafkaTopic is the raw Sarama way: the shared async producer and, to
// consume, a Sarama consumer group that marks each handled message.
type kafkaTopic struct {
	spec     spec
	brokers  []string
	producer sarama.AsyncProducer
	config   func() *sarama.Config
	cleanup  func(context.Context) error
}

func (t *kafkaTopic) newSender(context.Context) (sender, error) { return &kafkaSender{t: t}, nil }

func (t *kafkaTopic) consume(_ context.Context, handle func(int64)) (func() error, error) {
	group, err := sarama.NewConsumerGroup(t.brokers, t.spec.group, t.config())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		h := kafkaHandler{handle: handle}
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{t.spec.topic}, h); errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
		}
	})
	return func() error {
		cancel()
		wg.Wait()
		return group.Close()
	}, nil
}

func (t *kafkaTopic) close(ctx context.Context) error { return t.cleanup(ctx) }

// kafkaHandler handles each claimed message and marks it for the next
// automatic offset commit.
type kafkaHandler struct{ handle func(int64) }

func (kafkaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (kafkaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h kafkaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if sentAt, err := readSentAt(m.Value); err == nil {
				h.handle(sentAt)
			}
			sess.MarkMessage(m, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

// kafkaSender hands messages to the async producer; flush waits for the
// broker's acknowledgement of each.
type kafkaSender struct {
	t        *kafkaTopic
	inflight sync.WaitGroup
	mu       sync.Mutex
	err      error
}

func (s *kafkaSender) send(ctx context.Context, sentAt int64) error {
	s.inflight.Add(1)
	select {
	case s.t.producer.Input() <- &sarama.ProducerMessage{Topic: s.t.spec.topic, Value: sarama.ByteEncoder(rawPayload(s.t.spec.payloadSize, sentAt)), Metadata: s}:
		return nil
	case <-ctx.Done():
		s.inflight.Done()
		return ctx.Err()
	}
}

func (s *kafkaSender) done(err error) {
	if err != nil {
		s.mu.Lock()
		s.err = cmpOr(s.err, err)
		s.mu.Unlock()
	}
	s.inflight.Done()
}

func (s *kafkaSender) flush(context.Context) error {
	s.inflight.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.err
	s.err = nil
	return err
}

func (s *kafkaSender) close() error { return nil }
