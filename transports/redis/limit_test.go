package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/redis"
)

// sized returns a message with id whose transports.MessageSize is size.
func sized(id string, size int) *message.Message {
	msg := message.NewMessage(id, nil)
	msg.Metadata.Set("ce_id", id)
	msg.Payload = []byte(strings.Repeat("x", size-transports.MessageSize(msg)))
	return msg
}

// TestMaxMessageBytes: by default the transport accepts messages up to
// 1,000,000 bytes and refuses larger ones before sending, with an error
// that names the setting, failing no publish that shares its pipeline.
// Behind the default lies a Redis whose client-query-buffer-limit is at its
// 1mb floor: there a 2 MiB message used to close the connection (EOF) and
// fail the publishes sharing its pipeline; a message at the default limit,
// published or delayed, goes through.
func TestMaxMessageBytes(t *testing.T) {
	t.Parallel()
	for _, floor := range []bool{false, true} {
		t.Run(map[bool]string{false: "DefaultRedis", true: "QueryBufferFloor"}[floor], func(t *testing.T) {
			t.Parallel()
			cfg := redis.Config{}
			if floor {
				cfg.Addr = startServer(t, "--client-query-buffer-limit", "1mb").addr
			}
			tr := open(t, cfg)
			topic := uniq("size")
			t.Cleanup(func() { dropStreams(tr, topic) })
			const limit = redis.DefaultMaxMessageBytes
			if got := tr.Features().MaxMessageBytes; got != limit {
				t.Errorf("Features().MaxMessageBytes = %d, want DefaultMaxMessageBytes, %d", got, limit)
			}
			pub, _ := tr.Publisher()

			// A 2 MiB message next to 16 small ones.
			var wg sync.WaitGroup
			var failed atomic.Int32
			bigErr := make(chan error, 1)
			wg.Add(1)
			go func() { defer wg.Done(); bigErr <- pub.Publish(topic, sized(uniq("big"), 2<<20)) }()
			for i := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := pub.Publish(topic, sized(fmt.Sprintf("small-%d", i), 100)); err != nil {
						failed.Add(1)
						t.Errorf("a small publish next to a 2 MiB one failed: %v", err)
					}
				}()
			}
			wg.Wait()
			err := <-bigErr
			t.Logf("2 MiB: %v; %d of 16 small publishes beside it failed", err, failed.Load())
			var tl *transports.MessageTooLargeError
			if !errors.As(err, &tl) || tl.Size != 2<<20 || tl.Limit != limit || tl.Hint != "transport.redis.max_message_bytes" {
				t.Fatalf("Publish of 2 MiB = %v, want a *transports.MessageTooLargeError of %d bytes over %d naming transport.redis.max_message_bytes", err, 2<<20, limit)
			}
			if err := tr.PublishDelayed(context.Background(), topic, time.Hour, sized(uniq("big"), limit+1)); !errors.As(err, &tl) {
				t.Errorf("PublishDelayed of limit+1 bytes = %v, want a *transports.MessageTooLargeError", err)
			}

			// Exactly the limit goes through, published and delayed.
			if err := pub.Publish(topic, sized(uniq("limit"), limit)); err != nil {
				t.Errorf("Publish of exactly the limit: %v", err)
			}
			if err := tr.PublishDelayed(context.Background(), topic, time.Hour, sized(uniq("limit"), limit)); err != nil {
				t.Errorf("PublishDelayed of exactly the limit: %v", err)
			}
		})
	}
}
