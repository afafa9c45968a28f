package redis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports/redis"
)

// BenchmarkEndToEnd publishes b.N messages in batches of 100 and consumes
// them with one subscription of the transport, reporting msg/s.
func BenchmarkEndToEnd(b *testing.B) {
	tr := benchTransport(b)
	topic, group := uniq("bench"), uniq("bench")
	defer dropStreams(tr, topic)
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		b.Fatal(err)
	}
	pub, _ := tr.Publisher()
	defer pub.Close()
	sub, _ := tr.Subscriber(group)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"seq":1,"name":"benchmark payload"}`)
	b.ResetTimer()
	start := time.Now()
	go func() {
		batch := make([]*message.Message, 0, 100)
		for i := range b.N {
			m := message.NewMessage(strconv.Itoa(i), payload)
			m.Metadata.Set("ce_type", "bench")
			batch = append(batch, m)
			if len(batch) == cap(batch) || i == b.N-1 {
				if err := pub.Publish(topic, batch...); err != nil {
					b.Error(err)
					return
				}
				batch = batch[:0]
			}
		}
	}()
	for range b.N {
		m := <-msgs
		m.Ack()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchmarkRawGoRedis is the same work with plain go-redis: pipelined XADD
// in batches of 100, XREADGROUP COUNT 100 and one XACK per batch.
func BenchmarkRawGoRedis(b *testing.B) {
	tr := benchTransport(b)
	c := tr.Client()
	ctx := context.Background()
	topic, group := uniq("benchraw"), uniq("bench")
	stream := tr.Stream(topic)
	defer dropStreams(tr, topic)
	if err := c.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"seq":1,"name":"benchmark payload"}`)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i += 100 {
			_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for j := i; j < min(i+100, b.N); j++ {
					p.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"ce_type", "bench", "busline_uuid", strconv.Itoa(j), "payload", payload}})
				}
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for got := 0; got < b.N; {
		res, err := c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "raw", Streams: []string{stream, ">"}, Count: 100, Block: time.Second}).Result()
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, 0, len(res[0].Messages))
		for _, m := range res[0].Messages {
			ids = append(ids, m.ID)
		}
		got += len(ids)
		if err := c.XAck(ctx, stream, group, ids...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

func benchTransport(b *testing.B) *redis.Transport {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr, err := redis.New(ctx, redis.Config{Addr: redisAddr(), Logger: quietLogger()})
	if err != nil {
		b.Skipf("no Redis: %v", err)
	}
	b.Cleanup(func() { _ = tr.Close() })
	return tr
}
