package harness_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/busline/busline/bench/internal/harness"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tiny is the quick mode on the memory transport with sizes that run in a
// few seconds under -race.
func tiny() harness.Config {
	cfg := harness.Quick()
	cfg.Transports = []string{harness.Memory}
	cfg.PublishMessages = 200
	cfg.E2EMessages = 300
	cfg.Backlog = 300
	cfg.Publishers = 8
	cfg.BatchPublishers = 3
	cfg.BatchSize = 7 // 200 and 300 are no multiple: the last batch is short
	cfg.KeyedMessages = 200
	cfg.Keys = 20
	cfg.KeyedConcurrency = 4
	cfg.KeyedWork = 100 * time.Microsecond
	cfg.LatencyRate = 200
	cfg.LatencyDuration = 250 * time.Millisecond
	cfg.MaxDuration = 20 * time.Second
	return cfg
}

func TestRunQuickOnMemory(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress strings.Builder
	cfg := tiny()
	cfg.Progress = &progress
	rep, err := harness.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// raw-sarama is Kafka's second raw way; memory has no raw-sync either.
	ways := slices.DeleteFunc(slices.Clone(harness.AllWays), func(w string) bool {
		return w == harness.WayRawSarama || w == harness.WayRawSync
	})
	measurements := 0
	for _, s := range harness.AllScenarios {
		for _, w := range ways {
			cell, ok := rep.Cell(harness.Memory, s, w)
			if !harness.RunsOn(s, w) {
				if ok {
					t.Errorf("%s %s: measured, but RunsOn says it is not", s, w)
				}
				continue
			}
			measurements++
			if !ok {
				t.Errorf("%s %s: not measured", s, w)
				continue
			}
			if cell.Runs != 1 || cell.Err != nil {
				t.Errorf("%s %s: %d successful runs, error %v; want 1 run and no error", s, w, cell.Runs, cell.Err)
				continue
			}
			if s == harness.ScenarioLatency {
				if cell.P50 <= 0 || cell.P99 < cell.P50 {
					t.Errorf("%s %s: p50 %v p99 %v, want 0 < p50 <= p99", s, w, cell.P50, cell.P99)
				}
			} else if cell.Rate <= 0 {
				t.Errorf("%s %s: rate %v msg/s, want > 0", s, w, cell.Rate)
			}
			if s == harness.ScenarioE2E && (cell.Allocs <= 0 || cell.Bytes <= 0) {
				t.Errorf("e2e %s: %v allocs/msg, %v B/msg, want both > 0", w, cell.Allocs, cell.Bytes)
			}
			keyed := s == harness.ScenarioE2EKeyed || s == harness.ScenarioE2EKeyed1
			if keyed != cell.Ordered {
				t.Errorf("%s %s: order checked %v, want %v", s, w, cell.Ordered, keyed)
			}
			if cell.Violations != 0 {
				t.Errorf("%s %s: %d per-key order violations on memory, whose subscribers keep each key's order", s, w, cell.Violations)
			}
			if cell.Capped {
				t.Errorf("%s %s: capped at %v, which these sizes should never reach", s, w, cfg.MaxDuration)
			}
		}
	}
	md := rep.Markdown()
	for _, want := range []string{
		"| memory | raw |", "| memory | busline |", "| memory | busline-otel |",
		"| publish-1 | publish-8 | publish-batch | e2e | e2e-batch | drain | e2e-keyed-1 | e2e-keyed-4 |",
		"## Targets", "Machine: ",
		"| instrumentation: busline-otel ÷ busline, e2e ≥ 0.9× |",
		"| per-key order violations in e2e-keyed and e2e-keyed-1, all runs = 0 | 0 yes |",
		"| memory | e2e-batch |", "÷ watermill", "÷ transport",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if got := strings.Count(progress.String(), "\n"); got != measurements {
		t.Errorf("progress has %d lines, want one per measurement (%d):\n%s", got, measurements, progress.String())
	}
}

func TestRunReportsUnreachableBrokers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := tiny()
	cfg.Transports = []string{harness.RabbitMQ, harness.Redis}
	cfg.RabbitMQURL = "amqp://bench:s3cret@127.0.0.1:1/"
	cfg.RedisAddr = "127.0.0.1:1"
	rep, err := harness.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, tr := range cfg.Transports {
		if msg := rep.Unavailable[tr]; !strings.Contains(msg, "make brokers") {
			t.Errorf("%s: unavailable reason %q, want a hint to start the broker", tr, msg)
		}
	}
	md := rep.Markdown()
	if !strings.Contains(md, "**not measured**") {
		t.Errorf("report does not say the transports were not measured:\n%s", md)
	}
	if strings.Contains(md, "s3cret") {
		t.Errorf("report prints the RabbitMQ password:\n%s", md)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cfg := tiny()
	cfg.Transports = []string{"nats"}
	cfg.Runs = -1
	cfg.PayloadSize = 10
	cfg.KeyedConcurrency = 5000
	cfg.KeyedWork = -time.Second
	_, err := harness.Run(context.Background(), cfg)
	if err == nil {
		t.Fatal("Run accepted an unknown transport, negative runs, a 10-byte payload, a concurrency of 5000 and negative work")
	}
	for _, want := range []string{`transport "nats"`, "Runs -1", "PayloadSize 10", "KeyedConcurrency 5000", "KeyedWork -1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
