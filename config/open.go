package config

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	_ "github.com/busline/busline/transports/memory" // the default transport needs no import
)

// Open loads the configuration file at path and returns a bus on the
// transport it names, ready for Subscribe and Run. Closing the bus closes the
// transport. Changing transport.kind (and its section) in the file is all it
// takes to move the program to another broker; the transport's package must
// be imported, for example with _ "github.com/busline/busline/transports/all".
//
// Options give the bus and its transport what a file cannot: WithLogger,
// WithObserver.
func Open(ctx context.Context, path string, opts ...OpenOption) (*bus.Bus, error) {
	cfg, err := Load(path)
	if err != nil {
		return nil, err
	}
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	return cfg.open(ctx, o)
}

// OpenOption changes what Open builds.
type OpenOption func(*openOptions)

type openOptions struct {
	logger   *slog.Logger
	observer bus.Observer
}

// WithLogger makes the bus and its transport log to logger. Default:
// slog.Default().
func WithLogger(logger *slog.Logger) OpenOption {
	return func(o *openOptions) { o.logger = logger }
}

// WithObserver instruments the bus with obs (for example otelbus.New()).
// Default: none.
func WithObserver(obs bus.Observer) OpenOption {
	return func(o *openOptions) { o.observer = obs }
}

// Open opens c's transport and returns a bus on it that closes the
// transport when it closes. logger nil means slog.Default(); a WithLogger
// among opts wins over it.
func (c *Config) Open(ctx context.Context, logger *slog.Logger, opts ...OpenOption) (*bus.Bus, error) {
	o := openOptions{logger: logger}
	for _, opt := range opts {
		opt(&o)
	}
	return c.open(ctx, o)
}

func (c *Config) open(ctx context.Context, o openOptions) (*bus.Bus, error) {
	t, err := c.OpenTransport(ctx, o.logger)
	if err != nil {
		return nil, err
	}
	bc := c.BusConfig()
	bc.Logger = o.logger
	bc.Observer = o.observer
	bc.CloseTransport = true
	b, err := bus.New(t, bc)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	return b, nil
}

// OpenTransport opens the transport c names, with its section decoded as
// strictly as the rest of the file. logger nil means slog.Default().
func (c *Config) OpenTransport(ctx context.Context, logger *slog.Logger) (transports.Transport, error) {
	kind := c.Transport.Kind
	if kind == "" {
		kind = "memory"
	}
	t, err := transports.Open(ctx, kind, transports.OpenParams{
		Service: c.Service,
		Logger:  logger,
		Decode:  c.Transport.Decode,
	})
	if err != nil {
		return nil, fmt.Errorf("config: transport.kind %s: %w", kind, err)
	}
	return t, nil
}

// BusConfig returns the bus settings c describes, without a logger.
func (c *Config) BusConfig() bus.Config {
	bc := bus.Config{
		Service:       c.Service,
		ShutdownGrace: c.ShutdownGrace,
		Topics:        c.Topics,
		Retry:         c.Retry.RetryPolicy,
		Delays:        delays(c.Retry.Delays),
	}
	if len(c.Subscriptions) > 0 {
		bc.Subscriptions = make(map[string]bus.SubscriptionConfig, len(c.Subscriptions))
	}
	for group := range c.Subscriptions {
		s, r := c.SubscriptionFor(group), c.RetryFor(group)
		p := r.RetryPolicy
		bc.Subscriptions[group] = bus.SubscriptionConfig{
			Concurrency: s.Concurrency,
			Timeout:     s.Timeout,
			Ordered:     s.Ordered,
			Retry:       &p,
			Delays:      delays(r.Delays),
		}
	}
	return bc
}

// delays copies d, keeping an empty list non-nil: it means "no tiers".
func delays(d []time.Duration) []time.Duration {
	if d == nil {
		return nil
	}
	return append([]time.Duration{}, d...)
}
