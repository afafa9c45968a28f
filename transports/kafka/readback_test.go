package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// unique returns a name unique to the test run.
func unique(prefix string) string { return prefix + "." + uuid.NewString()[:8] }

// readAll reads topic from the start with a plain Kafka client (franz-go)
// until it has seen want records or timeout passes, and returns the count of
// each Watermill UUID.
func readAll(t testing.TB, addrs []string, topic string, want int, timeout time.Duration) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("franz-go client: %v", err)
	}
	defer cl.Close()
	counts := map[string]int{}
	total := 0
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for total < want && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) {
			total++
			for _, h := range r.Headers {
				if h.Key == "_watermill_message_uuid" {
					counts[string(h.Value)]++
				}
			}
		})
	}
	// Anything more (a duplicate) arrives quickly once the first want are in.
	extra, cancelExtra := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancelExtra()
	cl.PollFetches(extra).EachRecord(func(r *kgo.Record) {
		for _, h := range r.Headers {
			if h.Key == "_watermill_message_uuid" {
				counts[string(h.Value)]++
			}
		}
	})
	return counts
}
