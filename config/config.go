package config

import (
	"maps"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
)

// The defaults documented on the fields are the bus's and the middleware's,
// so that a file and a bus.Config left empty mean the same.
var (
	defaultRetry         = middleware.DefaultRetryPolicy()
	defaultShutdownGrace = bus.DefaultShutdownGrace
	defaultAttempts      = defaultRetry.Attempts
	defaultInitial       = defaultRetry.Initial
	defaultMax           = defaultRetry.Max
	defaultMultiplier    = defaultRetry.Multiplier
	defaultJitter        = defaultRetry.Jitter
)

const defaultConcurrency = 1

// defaultDelays returns a fresh copy of the default delayed-redelivery tiers.
func defaultDelays() []time.Duration { return middleware.DefaultDelays() }

// Config is a busline configuration, as read from YAML by [Load] or [Parse].
//
// Parse fills every default before decoding, so a key present in the YAML
// always wins, an explicit zero included (and [Config.Validate] then rejects a
// zero where it is not allowed). A Config is safe for concurrent reads.
type Config struct {
	// Service names the service: 1 to 200 letters, digits, ".", "_" or "-".
	// It is the CloudEvents source of published events. Required, no default.
	Service string `yaml:"service"`

	// ShutdownGrace is how long Close waits for in-flight handlers to finish.
	// Default 30s; must be > 0.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`

	// Transport selects the broker and holds its settings. Default: the
	// memory transport.
	Transport Transport `yaml:"transport"`

	// Retry is the failure policy of every subscription that does not
	// override it. Default: see [Retry].
	Retry Retry `yaml:"retry"`

	// Subscriptions holds per consumer group settings, keyed by group name
	// (same rule as Service). Default empty: every group uses the defaults of
	// [Subscription]; see [Config.SubscriptionFor].
	Subscriptions map[string]Subscription `yaml:"subscriptions"`

	// Topics maps an event name to the wire topic it is published on, for the
	// events whose topic is not their name. Both sides follow the rule of
	// Service. Default empty: every event is published on its name.
	Topics map[string]string `yaml:"topics"`

	src *source // where the Config was parsed from; nil when built in Go
}

// Retry is a failure policy: a failed message is first retried in place
// Attempts times in all, waiting per Backoff in between; then it is redelivered
// once per Delays tier; then it goes to the poison lane.
type Retry struct {
	// Attempts is the number of immediate attempts, the first included: 1
	// means no immediate retry. Default 3; must be >= 1.
	Attempts int `yaml:"attempts"`

	// Backoff is the wait between immediate attempts. Default: see [Backoff].
	Backoff Backoff `yaml:"backoff"`

	// Delays are the delayed-redelivery tiers tried after the immediate
	// attempts, in order. Default [10s, 1m, 10m] when absent (nil); an
	// explicit empty list, `delays: []`, means no delayed redelivery: the
	// message goes to the poison lane right after its immediate attempts.
	// Each must be > 0.
	Delays []time.Duration `yaml:"delays"`
}

// Backoff is an exponential backoff with jitter: the n-th wait is
// Initial*Multiplier^(n-1), capped at Max, randomised by ±Jitter.
type Backoff struct {
	// Initial is the first wait. Default 100ms; must be > 0.
	Initial time.Duration `yaml:"initial"`

	// Max caps each wait. Default 5s; must be >= Initial.
	Max time.Duration `yaml:"max"`

	// Multiplier grows each wait from the previous one. Default 2; must be
	// >= 1 (1 waits Initial every time).
	Multiplier float64 `yaml:"multiplier"`

	// Jitter randomises each wait by up to this fraction of it. Default 0.2
	// when loaded from YAML without the key; 0 means no jitter; must be in
	// [0, 1].
	Jitter float64 `yaml:"jitter"`

	// MaxElapsed stops immediate retries once this much time has passed
	// since the first attempt. Default 0: no limit; must be >= 0.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
}

// Subscription is the settings of one consumer group.
type Subscription struct {
	// Concurrency is the number of messages handled at once. Default 1; must
	// be from 1 to 1024.
	Concurrency int `yaml:"concurrency"`

	// Timeout bounds each handler attempt. Default 0: no timeout; must be
	// >= 0.
	Timeout time.Duration `yaml:"timeout"`

	// Ordered asks for strict ordering: a failing message is retried in
	// place, blocking the ones behind it, then sent to the poison lane; there
	// is no delayed redelivery. Default false. Requires Concurrency 1.
	Ordered bool `yaml:"ordered"`

	// Retry overrides parts of the global failure policy for this group.
	// Default nil: the global policy as is.
	Retry *RetryOverride `yaml:"retry"`
}

// RetryOverride is a partial [Retry]: each non-nil field replaces the global
// one, the others are inherited. Its YAML keys are those of Retry.
type RetryOverride struct {
	// Attempts overrides Retry.Attempts. Default nil: inherited.
	Attempts *int `yaml:"attempts"`

	// Backoff overrides the fields of Retry.Backoff it sets. Default nil:
	// inherited.
	Backoff *BackoffOverride `yaml:"backoff"`

	// Delays overrides Retry.Delays; a pointer to an empty list means no
	// delayed redelivery. Default nil: inherited.
	Delays *[]time.Duration `yaml:"delays"`
}

// BackoffOverride is a partial [Backoff]: each non-nil field replaces the
// global one. Its YAML keys are those of Backoff.
type BackoffOverride struct {
	// Initial overrides Backoff.Initial. Default nil: inherited.
	Initial *time.Duration `yaml:"initial"`

	// Max overrides Backoff.Max. Default nil: inherited.
	Max *time.Duration `yaml:"max"`

	// Multiplier overrides Backoff.Multiplier. Default nil: inherited.
	Multiplier *float64 `yaml:"multiplier"`

	// Jitter overrides Backoff.Jitter. Default nil: inherited.
	Jitter *float64 `yaml:"jitter"`

	// MaxElapsed overrides Backoff.MaxElapsed. Default nil: inherited.
	MaxElapsed *time.Duration `yaml:"max_elapsed"`
}

// setDefaults fills every zero field with its default. Parse calls it on a
// fresh Config before decoding, so keys present in the YAML override it.
func (c *Config) setDefaults() {
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = defaultShutdownGrace
	}
	if c.Transport.Kind == "" {
		c.Transport.Kind = defaultKind
	}
	c.Retry.setDefaults()
	if c.Retry.Backoff.Jitter == 0 {
		c.Retry.Backoff.Jitter = defaultJitter
	}
}

// setDefaults fills the zero fields of r whose zero is not a valid value,
// leaving Jitter (0 is no jitter) and MaxElapsed (0 is no limit) alone.
func (r *Retry) setDefaults() {
	if r.Attempts == 0 {
		r.Attempts = defaultAttempts
	}
	b := &r.Backoff
	if b.Initial == 0 {
		b.Initial = defaultInitial
	}
	if b.Max == 0 {
		b.Max = max(defaultMax, b.Initial)
	}
	if b.Multiplier == 0 {
		b.Multiplier = defaultMultiplier
	}
	if r.Delays == nil {
		r.Delays = defaultDelays()
	}
}

// setDefaults fills the zero fields of s whose zero is not a valid value.
func (s *Subscription) setDefaults() {
	if s.Concurrency == 0 {
		s.Concurrency = defaultConcurrency
	}
}

// SubscriptionFor returns the settings of the consumer group named group,
// with defaults filled, or all defaults for a group the config does not list.
func (c *Config) SubscriptionFor(group string) Subscription {
	s := c.Subscriptions[group]
	s.setDefaults()
	return s
}

// RetryFor returns the failure policy of the consumer group named group: the
// global policy with the group's overrides applied and defaults filled. The
// result shares no memory with c.
func (c *Config) RetryFor(group string) Retry {
	r := c.effectiveRetry(group)
	r.setDefaults()
	return r
}

// apply replaces the fields of r that o sets.
func (o *RetryOverride) apply(r *Retry) {
	if o.Attempts != nil {
		r.Attempts = *o.Attempts
	}
	if o.Delays != nil {
		r.Delays = append([]time.Duration{}, (*o.Delays)...)
	}
	if b := o.Backoff; b != nil {
		set(&r.Backoff.Initial, b.Initial)
		set(&r.Backoff.Max, b.Max)
		set(&r.Backoff.Multiplier, b.Multiplier)
		set(&r.Backoff.Jitter, b.Jitter)
		set(&r.Backoff.MaxElapsed, b.MaxElapsed)
	}
}

// set copies *from into *to when from is not nil.
func set[T any](to *T, from *T) {
	if from != nil {
		*to = *from
	}
}

// overridden lists the fields of o that are set, by their Retry key paths.
func (o *RetryOverride) overridden() map[string]bool {
	m := map[string]bool{}
	if o == nil {
		return m
	}
	m["attempts"] = o.Attempts != nil
	m["delays"] = o.Delays != nil
	if b := o.Backoff; b != nil {
		m["backoff.initial"] = b.Initial != nil
		m["backoff.max"] = b.Max != nil
		m["backoff.multiplier"] = b.Multiplier != nil
		m["backoff.jitter"] = b.Jitter != nil
		m["backoff.max_elapsed"] = b.MaxElapsed != nil
	}
	maps.DeleteFunc(m, func(_ string, set bool) bool { return !set })
	return m
}
