package harness

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
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
	// throughput: async confirms, pipelining, batched acks.
	WayRaw = "raw"
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
)

// Scenario names accepted by Config.Scenarios.
const (
	// ScenarioPublish1 publishes from one goroutine, no consumer running.
	ScenarioPublish1 = "publish-1"
	// ScenarioPublishN publishes from Config.Publishers goroutines.
	ScenarioPublishN = "publish-n"
	// ScenarioE2E publishes from Config.Publishers goroutines while one
	// consumer handles; it is timed to the last handled message.
	ScenarioE2E = "e2e"
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
	AllWays       = []string{WayRaw, WayRawSarama, WayWatermill, WayTransport, WayBusline}
	AllScenarios  = []string{ScenarioPublish1, ScenarioPublishN, ScenarioE2E, ScenarioDrain, ScenarioLatency}
)

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
	} {
		if n.v < 1 {
			bad("%s %d must be at least 1 (0 means the default)", n.name, n.v)
		}
	}
	if c.PayloadSize < minPayload {
		bad("PayloadSize %d is below %d bytes: the payload carries a timestamp and, for busline, a JSON envelope", c.PayloadSize, minPayload)
	}
	if c.LatencyDuration < 0 || c.MaxDuration < 0 {
		bad("LatencyDuration %v and MaxDuration %v must not be negative (0 means the default)", c.LatencyDuration, c.MaxDuration)
	}
	return errors.Join(errs...)
}
