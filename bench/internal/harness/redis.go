package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports/redis"
)

// EnvRedisAddr is the environment variable read for Config.RedisAddr.
const EnvRedisAddr = "BUSLINE_REDIS_ADDR"

// redisBatch is the raw client's pipeline length, XREADGROUP COUNT and
// XACK batch.
const redisBatch = 100

// redisPool is the connection pool size of every way, so that 64
// publishing goroutines do not queue for connections in one way only.
const redisPool = 128

// openRedis opens the Redis ways: go-redis with pipelined XADD, XREADGROUP
// COUNT 100 and one XACK per batch (raw), the same with one XADD per call
// (raw-sync), watermill-redisstream, and
// busline's redis transport. Every key the run creates starts with
// "busline-bench:<run id>:" and is deleted after its measurement.
func openRedis(ctx context.Context, c *Config, runID string) (*plugin, error) {
	addr := c.RedisAddr
	if addr == "" {
		addr = os.Getenv(EnvRedisAddr)
	}
	if addr == "" {
		addr = redis.DefaultAddr
	}
	client := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: redisPool})
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %v (start it with `make brokers`, or set %s)", addr, err, EnvRedisAddr)
	}
	version := "?"
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	prefix := "busline-bench:" + runID + ":"
	p := &plugin{
		describe: fmt.Sprintf("Redis %s at %s", version, addr),
		ways:     map[string]way{},
	}
	deleteKeys := func(ctx context.Context, pattern string) error {
		var keys []string
		iter := client.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		return client.Del(ctx, keys...).Err()
	}
	// topicCleanup deletes the streams of topic: its own and its lanes.
	topicCleanup := func(topic string) func(context.Context) error {
		return func(ctx context.Context) error { return deleteKeys(ctx, prefix+"*"+topic+"*") }
	}
	p.closers = append(p.closers, client.Close, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return deleteKeys(ctx, prefix+"*")
	})

	prepRaw := func(ctx context.Context, s spec, syncPublish bool) (topic, error) {
		t := &streamTopic{client: client, spec: s, key: prefix + "raw:" + s.topic, syncPublish: syncPublish, cleanup: topicCleanup(s.topic)}
		if err := client.XGroupCreateMkStream(ctx, t.key, s.group, "0").Err(); err != nil {
			return nil, err
		}
		return t, nil
	}
	p.ways[WayRaw] = wayFuncs{prep: func(ctx context.Context, s spec) (topic, error) { return prepRaw(ctx, s, false) }}
	p.ways[WayRawSync] = wayFuncs{prep: func(ctx context.Context, s spec) (topic, error) { return prepRaw(ctx, s, true) }}

	// The adapter closes the client it was given when it closes: each of
	// its publishers and subscribers gets its own.
	newClient := func() *goredis.Client { return goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: redisPool}) }
	wmPub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: newClient()}, watermill.NopLogger{})
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("watermill-redisstream publisher: %w", err)
	}
	p.ways[WayWatermill] = wayFuncs{
		prep: func(_ context.Context, s spec) (topic, error) {
			// The adapter creates the group at its first Subscribe, reading
			// from the stream's start ("0"), so nothing is lost before it.
			wmSpec := s
			wmSpec.topic = prefix + "wm:" + s.topic
			return &routerTopic{spec: wmSpec, pub: wmPub, cleanup: topicCleanup(s.topic), newSub: func() (message.Subscriber, error) {
				return redisstream.NewSubscriber(redisstream.SubscriberConfig{
					Client:                        newClient(),
					ConsumerGroup:                 s.group,
					DisableIndefiniteInitialBlock: true, // lets Close return
				}, watermill.NopLogger{})
			}}, nil
		},
		closeFn: wmPub.Close,
	}

	bt, err := redis.New(ctx, redis.Config{Addr: addr, KeyPrefix: prefix + "bl:", PoolSize: redisPool, Service: "bench", Logger: quiet})
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("busline redis transport: %w", err)
	}
	if err := p.addBuslineWays(bt, func(topics []string, _ string) func(context.Context) error { return topicCleanup(topics[0]) }); err != nil {
		_ = p.close()
		return nil, err
	}
	return p, nil
}

// streamTopic is the raw Redis way on one stream and the group's consumer
// group. With syncPublish its senders send one XADD per call and wait for
// its reply (raw-sync).
type streamTopic struct {
	client      *goredis.Client
	spec        spec
	key         string
	syncPublish bool
	cleanup     func(context.Context) error
}

func (t *streamTopic) newSender(context.Context) (sender, error) {
	if t.syncPublish {
		return syncSender(func(ctx context.Context, sentAt int64) error {
			return t.client.XAdd(ctx, t.xadd(sentAt)).Err()
		}), nil
	}
	return &streamSender{t: t, pipe: t.client.Pipeline()}, nil
}

// xadd is the XADD of sentAt's message.
func (t *streamTopic) xadd(sentAt int64) *goredis.XAddArgs {
	return &goredis.XAddArgs{Stream: t.key, Values: []any{"payload", rawPayload(t.spec.payloadSize, sentAt)}}
}

func (t *streamTopic) consume(_ context.Context, handle func(int64)) (func() error, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range t.spec.consumers {
		consumer := fmt.Sprintf("raw-%d", i)
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := t.client.XReadGroup(ctx, &goredis.XReadGroupArgs{
					Group: t.spec.group, Consumer: consumer, Streams: []string{t.key, ">"},
					Count: redisBatch, Block: 100 * time.Millisecond,
				}).Result()
				if err != nil {
					continue // goredis.Nil when the block ends empty; ctx ends the loop
				}
				var ids []string
				for _, stream := range res {
					for _, m := range stream.Messages {
						if v, ok := m.Values["payload"].(string); ok {
							if sentAt, err := readSentAt([]byte(v)); err == nil {
								handle(sentAt)
							}
						}
						ids = append(ids, m.ID)
					}
				}
				if len(ids) > 0 {
					t.client.XAck(ctx, t.key, t.spec.group, ids...)
				}
			}
		})
	}
	return func() error {
		cancel()
		wg.Wait()
		return nil
	}, nil
}

func (t *streamTopic) close(ctx context.Context) error { return t.cleanup(ctx) }

// streamSender queues XADDs in a pipeline and sends them redisBatch at a
// time.
type streamSender struct {
	t    *streamTopic
	pipe goredis.Pipeliner
	n    int
}

func (s *streamSender) send(ctx context.Context, sentAt int64) error {
	s.pipe.XAdd(ctx, s.t.xadd(sentAt))
	s.n++
	if s.n >= redisBatch {
		return s.flush(ctx)
	}
	return nil
}

func (s *streamSender) flush(ctx context.Context) error {
	if s.n == 0 {
		return nil
	}
	s.n = 0
	cmds, err := s.pipe.Exec(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cmds {
		errs = append(errs, c.Err())
	}
	return errors.Join(errs...)
}

func (s *streamSender) close() error {
	s.pipe.Discard()
	return nil
}
