package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports/redis"
)

// pipelineCounter counts the pipelines a client sends and the commands in
// the largest one.
type pipelineCounter struct {
	pipelines, largest atomic.Int64
}

func (c *pipelineCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *pipelineCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return next
}
func (c *pipelineCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.pipelines.Add(1)
		for n := int64(len(cmds)); ; {
			cur := c.largest.Load()
			if n <= cur || c.largest.CompareAndSwap(cur, n) {
				break
			}
		}
		return next(ctx, cmds)
	}
}

// TestConcurrentPublishesSharePipelines: 64 goroutines publishing one message
// at a time all succeed, every message is stored once, and their XADDs travel
// in shared pipelines rather than one round trip each.
func TestConcurrentPublishesSharePipelines(t *testing.T) {
	t.Parallel()
	needRedis(t)
	client := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	counter := &pipelineCounter{}
	client.AddHook(counter)
	tr, err := redis.NewWithClient(client, redis.Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	topic := uniq("batch")
	t.Cleanup(func() { dropStreams(tr, topic); _ = tr.Close() })
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	const publishers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := pub.Publish(topic, message.NewMessage(fmt.Sprintf("%d-%d", p, i), []byte("x"))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}
	n, err := tr.Client().XLen(context.Background(), tr.Stream(topic)).Result()
	if err != nil || n != publishers*each {
		t.Fatalf("stream holds %d entries (%v), want %d", n, err, publishers*each)
	}
	calls, pipes := int64(publishers*each), counter.pipelines.Load()
	if counter.largest.Load() < 2 {
		t.Errorf("%d publishes went in %d pipelines of at most %d XADDs: concurrent publishes never shared one", calls, pipes, counter.largest.Load())
	}
	t.Logf("%d concurrent publishes in %d pipelines (largest %d XADDs)", calls, pipes, counter.largest.Load())

	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, message.NewMessage("late", []byte("x"))); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("publish after Close = %v, want ErrClosed", err)
	}
}
