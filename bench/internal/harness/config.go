package harness

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/busline/busline/bus"
)

// Transport names accepted by Config.Transports.
const (
	Memory   = "memory"
	RabbitMQ = "rabbitmq"
	Redis    = "redis"
	Kafka    = "kafka"
)

// Way names accepted by Config.Ways, in the order the table shows them.
const (
	// WayRaw is the broker's own client used as its authors recommend for
	// throughput: async confirms, pipelining, batched acks. It is the
	// baseline of busline's batch publishes.
	WayRaw = "raw"
	// WayRawSync is the broker's own client publishing one message per call
	// and waiting for its confirm before the next: publisher confirms waited
	// per message (RabbitMQ), one XADD per call (Redis), ProduceSync of one
	// record (Kafka). It is the baseline of busline's single-event Publish;
	// it consumes like WayRaw. Memory has none: its raw way is synchronous.
	WayRawSync = "raw-sync"
	// WayWatermill is the plain Watermill adapter with its documented durable
	// configuration, consumed through a router with no middleware.
	WayWatermill = "watermill"
	// WayTransport is busline's transport (its publisher and subscriber)
	// consumed through a plain Watermill router with no middleware: busline
	// without its typed layer.
	WayTransport = "transport"
	// WayBusline is busline itself: bus.Publish of a typed event (JSON),
	// bus.Subscribe with the default middleware.
	WayBusline = "busline"
	// WayBuslineOtel is WayBusline with otelbus as the bus's Observer: every
	// message traced (always sampled, no exporter) and metered (an SDK meter
	// provider with a manual reader nobody collects). Only e2e runs it.
	WayBuslineOtel = "busline-otel"
)

// Scenario names accepted by Config.Scenarios.
const (
	// ScenarioPublish1 publishes from one goroutine, no consumer running.
	ScenarioPublish1 = "publish-1"
	// ScenarioPublishN publishes from Config.Publishers goroutines.
	ScenarioPublishN = "publish-n"
	// ScenarioPublishBatch publishes from Config.BatchPublishers
	// goroutines, Config.BatchSize messages per call where the way has a
	// batch call (bus.PublishBatch, a Watermill Publish of several
	// messages); raw clients pipeline as in every scenario.
	ScenarioPublishBatch = "publish-batch"
	// ScenarioE2E publishes from Config.Publishers goroutines while one
	// consumer handles; it is timed to the last handled message.
	ScenarioE2E = "e2e"
	// ScenarioE2EBatch is e2e with the publishing of publish-batch.
	ScenarioE2EBatch = "e2e-batch"
	// ScenarioE2EKeyed is e2e with an ordering key on every message
	// (Config.Keys keys, each published from one goroutine in sequence,
	// Config.KeyRun messages of a key in a row), a
	// handler that takes Config.KeyedWork, and Config.KeyedConcurrency
	// handlers; the consumer checks each key's order. Only busline runs it.
	ScenarioE2EKeyed = "e2e-keyed"
	// ScenarioE2EKeyed1 is e2e-keyed with one handler: its baseline.
	ScenarioE2EKeyed1 = "e2e-keyed-1"
	// ScenarioDrain consumes a backlog of Config.Backlog messages published
	// before the consumer started.
	ScenarioDrain = "drain"
	// ScenarioLatency publishes at Config.LatencyRate and records each
	// message's publish-to-handle time.
	ScenarioLatency = "latency"
)

// AllTransports, AllWays and AllScenarios are the defaults of Config.
var (
	AllTransports = []string{Memory, RabbitMQ, Redis, Kafka}
	AllWays       = []string{WayRaw, WayRawSync, WayRawSarama, WayWatermill, WayTransport, WayBusline, WayBuslineOtel}
	AllScenarios  = []string{
		ScenarioPublish1, ScenarioPublishN, ScenarioPublishBatch,
		ScenarioE2E, ScenarioE2EBatch, ScenarioDrain, ScenarioLatency,
		ScenarioE2EKeyed1, ScenarioE2EKeyed,
	}
)

// RunsOn reports whether scenario is measured on way: raw-sync has no
// batch call and consumes as raw does (its drain would be raw's); only
// busline publishes with keys; busline-otel is measured on e2e.
func RunsOn(scenario, way string) bool {
	switch {
	case scenario == ScenarioE2EKeyed || scenario == ScenarioE2EKeyed1:
		return way == WayBusline
	case way == WayBuslineOtel:
		return scenario == ScenarioE2E
	case way == WayRawSync:
		return scenario != ScenarioDrain && scenario != ScenarioPublishBatch && scenario != ScenarioE2EBatch
	}
	return true
}

// Config configures a benchmark run. The zero value is the full run; Quick
// returns the everyday one.
type Config struct {
	// Transports to measure. Default: AllTransports.
	Transports []string

	// Ways to measure on each transport. Default: AllWays.
	Ways []string

	// Scenarios to run. Default: AllScenarios.
	Scenarios []string

	// Runs is how many times each measurement is repeated; the table shows
	// the median. Default: 3.
	Runs int

	// PayloadSize is the size in bytes of each message's payload (for
	// busline, of its JSON encoding). Default: 256.
	PayloadSize int

	// PublishMessages is how many messages each publish scenario sends.
	// Default: 20,000.
	PublishMessages int

	// E2EMessages is how many messages the e2e scenario sends. Default:
	// 20,000.
	E2EMessages int

	// Backlog is how many messages the drain scenario consumes. Default:
	// 50,000.
	Backlog int

	// Publishers is the number of publishing goroutines of publish-n, e2e
	// and the drain's backlog. Default: 64.
	Publishers int

	// Consumers is each way's handler concurrency: busline's
	// WithConcurrency, the number of router handlers, the raw client's
	// consuming goroutines. Default: 1.
	Consumers int

	// BatchPublishers is the number of publishing goroutines of
	// publish-batch and e2e-batch. Default: 8.
	BatchPublishers int

	// BatchSize is how many messages each batch call of publish-batch and
	// e2e-batch publishes. Default: 100.
	BatchSize int

	// KeyedMessages is how many messages e2e-keyed and e2e-keyed-1 send.
	// Default: 4,000.
	KeyedMessages int

	// Keys is the number of ordering keys of e2e-keyed and e2e-keyed-1.
	// Default: 1,000.
	Keys int

	// KeyRun is how many messages of one key each publisher of e2e-keyed
	// and e2e-keyed-1 sends in a row before its next key, as the events of
	// one entity come close together: they are then in flight together,
	// and a consumer that does not keep the key's order shows it. Default: 4.
	KeyRun int

	// KeyedConcurrency is e2e-keyed's handler concurrency
	// (bus.WithConcurrency). Default: 16.
	KeyedConcurrency int

	// KeyedWork is how long each handler of e2e-keyed and e2e-keyed-1
	// waits, a stand-in for the database call of a real handler, so that
	// concurrent handlers have something to overlap. Default: 1ms.
	KeyedWork time.Duration

	// LatencyRate is the publish rate of the latency scenario, in msg/s.
	// Default: 1,000.
	LatencyRate int

	// LatencyDuration is how long the latency scenario publishes. Default: 5s.
	LatencyDuration time.Duration

	// MaxDuration caps each measurement: publishing stops when it is
	// reached, and the figure is what was done in the time (marked * in the
	// table). Default: 30s.
	MaxDuration time.Duration

	// RabbitMQURL is the broker for the rabbitmq transport. Default:
	// $BUSLINE_RABBITMQ_URL, else amqp://guest:guest@localhost:5672/.
	RabbitMQURL string

	// RedisAddr is the host:port of the Redis server. Default:
	// $BUSLINE_REDIS_ADDR, else 127.0.0.1:6379.
	RedisAddr string

	// KafkaBrokers are the Kafka brokers. Default: $BUSLINE_KAFKA_BROKERS
	// (comma-separated), else an in-process kfake cluster started for the
	// run.
	KafkaBrokers []string

	// Progress receives one line per measurement. Default: io.Discard.
	Progress io.Writer
}

// Quick returns the configuration of the everyday run: one run of each
// measurement with small sizes, under two minutes for every transport.
func Quick() Config {
	return Config{
		Runs:            1,
		PublishMessages: 5000,
		E2EMessages:     5000,
		Backlog:         5000,
		KeyedMessages:   1000,
		LatencyRate:     500,
		LatencyDuration: time.Second,
		MaxDuration:     4 * time.Second,
	}
}

func (c *Config) setDefaults() {
	if len(c.Transports) == 0 {
		c.Transports = AllTransports
	}
	if len(c.Ways) == 0 {
		c.Ways = AllWays
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = AllScenarios
	}
	setInt(&c.Runs, 3)
	setInt(&c.PayloadSize, 256)
	setInt(&c.PublishMessages, 20000)
	setInt(&c.E2EMessages, 20000)
	setInt(&c.Backlog, 50000)
	setInt(&c.Publishers, 64)
	setInt(&c.Consumers, 1)
	setInt(&c.BatchPublishers, 8)
	setInt(&c.BatchSize, 100)
	setInt(&c.KeyedMessages, 4000)
	setInt(&c.Keys, 1000)
	setInt(&c.KeyRun, 4)
	setInt(&c.KeyedConcurrency, 16)
	if c.KeyedWork == 0 {
		c.KeyedWork = time.Millisecond
	}
	setInt(&c.LatencyRate, 1000)
	if c.LatencyDuration == 0 {
		c.LatencyDuration = 5 * time.Second
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 30 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

// Validate returns every problem of c at once. Call it after the defaults
// are set (Run does both).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkNames := func(what string, got, known []string) {
		for _, g := range got {
			if !slices.Contains(known, g) {
				bad("%s %q is not one of %s", what, g, strings.Join(known, ", "))
			}
		}
	}
	checkNames("transport", c.Transports, AllTransports)
	checkNames("way", c.Ways, AllWays)
	checkNames("scenario", c.Scenarios, AllScenarios)
	for _, n := range []struct {
		name string
		v    int
	}{
		{"Runs", c.Runs}, {"PublishMessages", c.PublishMessages}, {"E2EMessages", c.E2EMessages},
		{"Backlog", c.Backlog}, {"Publishers", c.Publishers}, {"Consumers", c.Consumers}, {"LatencyRate", c.LatencyRate},
		{"BatchPublishers", c.BatchPublishers}, {"BatchSize", c.BatchSize}, {"KeyedMessages", c.KeyedMessages},
		{"Keys", c.Keys}, {"KeyRun", c.KeyRun}, {"KeyedConcurrency", c.KeyedConcurrency},
	} {
		if n.v < 1 {
			bad("%s %d must be at least 1 (0 means the default)", n.name, n.v)
		}
	}
	if c.PayloadSize < minPayload {
		bad("PayloadSize %d is below %d bytes: the payload carries a timestamp and, for busline, a JSON envelope", c.PayloadSize, minPayload)
	}
	if c.LatencyDuration < 0 || c.MaxDuration < 0 || c.KeyedWork < 0 {
		bad("LatencyDuration %v, MaxDuration %v and KeyedWork %v must not be negative (0 means the default)", c.LatencyDuration, c.MaxDuration, c.KeyedWork)
	}
	if c.KeyedConcurrency > bus.MaxConcurrency {
		bad("KeyedConcurrency %d is above bus.MaxConcurrency, %d", c.KeyedConcurrency, bus.MaxConcurrency)
	}
	return errors.Join(errs...)
}
