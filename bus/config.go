package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/busline/busline/middleware"
)

// Config configures a Bus. The zero value is usable: every field has a
// default.
type Config struct {
	// Service names the publishing service in each message's ce_source.
	// Default: the base name of the running program.
	Service string

	// Logger receives the bus's and Watermill's logs (Watermill's info logs
	// at debug level). Default: slog.Default().
	Logger *slog.Logger

	// Codec encodes and decodes payloads. Default: JSON.
	Codec Codec

	// ShutdownGrace is how long Close lets in-flight handlers finish before
	// cancelling their contexts, when Close's own context has no earlier
	// deadline. Default: 30s.
	ShutdownGrace time.Duration

	// Topics maps event names to wire topics, for events whose topic differs
	// from their name. Default: every event's topic is its name.
	Topics map[string]string

	// Retry is the immediate-retry policy of every subscription that does
	// not set its own, its zero fields filled by its SetDefaults. Default:
	// middleware.DefaultRetryPolicy() (3 attempts, 100ms backoff doubling to
	// 5s, 20% jitter).
	Retry middleware.RetryPolicy

	// Delays are the delayed-redelivery tiers of every subscription that
	// does not set its own: after the immediate retries, a failed message
	// moves to the group's retry lane and is handled again after Delays[0],
	// then Delays[1], and so on, before the poison lane. Default (nil):
	// middleware.DefaultDelays(), 10s, 1m, 10m. A non-nil empty slice means
	// no delayed redelivery.
	Delays []time.Duration

	// Subscriptions holds per-group settings, keyed by consumer group name.
	// Options passed to Subscribe override them. Default: a group absent
	// from the map uses the zero SubscriptionConfig with its defaults.
	Subscriptions map[string]SubscriptionConfig

	// Observer is told of every publish, attempt and lane move, for
	// instrumentation (package otelbus). Default: nil, nothing is observed
	// and nothing is spent on it.
	Observer Observer

	// CloseTransport makes Close also close the transport. Default: false,
	// the caller that opened the transport closes it (config.Open sets it).
	CloseTransport bool
}

// SubscriptionConfig holds the settings of one subscription.
type SubscriptionConfig struct {
	// Concurrency is how many messages of the subscription are handled at
	// once. Where the transport's subscribers are
	// transports.ConcurrentConsumer, one consumer per topic spreads its
	// messages over Concurrency workers by key (ce_partitionkey): different
	// keys run in parallel and each key keeps its order. Elsewhere they are
	// Concurrency competing consumers, and more than one gives up per-key
	// order. Default: 1.
	Concurrency int

	// Timeout bounds each handler attempt; the handler's context is
	// cancelled when it expires. On a transports.ConsumerTimeouter
	// (RabbitMQ), Subscribe refuses a Timeout whose attempts and backoff
	// could outlast the broker's consumer timeout. Default: 0, no timeout.
	Timeout time.Duration

	// Retry replaces Config.Retry for this subscription, its zero fields
	// filled by its SetDefaults. Default: nil, the bus's policy.
	Retry *middleware.RetryPolicy

	// Delays overrides Config.Delays for this subscription. Default: nil,
	// the bus's tiers; a non-nil empty slice means none.
	Delays []time.Duration

	// Ordered asks for strict per-key order: failures are retried in place,
	// blocking the messages behind them, then go to the poison lane; there
	// is no delayed redelivery, which would let later messages overtake.
	// Requires Concurrency 1. Default: false.
	Ordered bool
}

// MaxConcurrency is the largest SubscriptionConfig.Concurrency accepted.
const MaxConcurrency = 1024

// DefaultShutdownGrace is Config.ShutdownGrace's default.
const DefaultShutdownGrace = 30 * time.Second

func (c *Config) setDefaults() {
	if c.Service == "" {
		c.Service = filepath.Base(os.Args[0])
		if ValidateName("service", c.Service) != nil {
			c.Service = "busline"
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Codec == nil {
		c.Codec = JSON
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	c.Retry.SetDefaults()
	if c.Delays == nil {
		c.Delays = middleware.DefaultDelays()
	}
}

// validate returns every problem of c at once.
func (c *Config) validate() error {
	var errs []error
	if err := ValidateName("service", c.Service); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("bus.Config.ShutdownGrace %v is negative", c.ShutdownGrace))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("bus.Config.Retry: %w", err))
	}
	if err := middleware.ValidateDelays(c.Delays); err != nil {
		errs = append(errs, fmt.Errorf("bus.Config.Delays: %w", err))
	}
	for event, topic := range c.Topics {
		if err := ValidateName("event", event); err != nil {
			errs = append(errs, fmt.Errorf("bus.Config.Topics: %w", err))
		}
		if err := ValidateName("topic", topic); err != nil {
			errs = append(errs, fmt.Errorf("bus.Config.Topics[%q]: %w", event, err))
		}
	}
	for group, s := range c.Subscriptions {
		if err := ValidateName("group", group); err != nil {
			errs = append(errs, fmt.Errorf("bus.Config.Subscriptions: %w", err))
		}
		if err := s.validate(); err != nil {
			errs = append(errs, fmt.Errorf("bus.Config.Subscriptions[%q]: %w", group, err))
		}
	}
	return errors.Join(errs...)
}

// resolve fills s's defaults from the bus's config.
func (s *SubscriptionConfig) resolve(c *Config) {
	if s.Concurrency == 0 {
		s.Concurrency = 1
	}
	if s.Retry == nil {
		r := c.Retry
		s.Retry = &r
	} else {
		r := *s.Retry
		r.SetDefaults()
		s.Retry = &r
	}
	if s.Delays == nil {
		s.Delays = c.Delays
	}
	if s.Ordered {
		s.Delays = []time.Duration{}
	}
}

func (s *SubscriptionConfig) validate() error {
	var errs []error
	if s.Concurrency < 0 || s.Concurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("concurrency %d is out of range 1..%d", s.Concurrency, MaxConcurrency))
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", s.Timeout))
	}
	if s.Ordered && s.Concurrency > 1 {
		errs = append(errs, fmt.Errorf("ordered needs concurrency 1, not %d: concurrent handlers cannot keep order", s.Concurrency))
	}
	if s.Retry != nil {
		r := *s.Retry
		r.SetDefaults()
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("retry: %w", err))
		}
	}
	if err := middleware.ValidateDelays(s.Delays); err != nil {
		errs = append(errs, fmt.Errorf("delays: %w", err))
	}
	return errors.Join(errs...)
}
