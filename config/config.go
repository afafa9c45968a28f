package config

import (
	"slices"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
)

// The defaults documented on the fields are the bus's and the middleware's,
// so that a file and a bus.Config left empty mean the same.
var defaultShutdownGrace = bus.DefaultShutdownGrace

const defaultConcurrency = 1

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
// Attempts times in all, waiting per Backoff in between (the
// middleware.RetryPolicy it embeds, whose YAML keys attempts and backoff it
// shares); then it is redelivered once per Delays tier; then it goes to the
// poison lane. Its rules and defaults are middleware.RetryPolicy's and
// middleware.Backoff's; Validate reports their problems at the positions
// of the keys.
type Retry struct {
	middleware.RetryPolicy `yaml:",inline"`

	// Delays are the delayed-redelivery tiers tried after the immediate
	// attempts, in order. Default [10s, 1m, 10m] when absent (nil); an
	// explicit empty list, `delays: []`, means no delayed redelivery: the
	// message goes to the poison lane right after its immediate attempts.
	// Each must be > 0.
	Delays []time.Duration `yaml:"delays"`
}

// DefaultRetry returns the failure policy of a file that sets none:
// middleware.DefaultRetryPolicy() and middleware.DefaultDelays().
func DefaultRetry() Retry {
	return Retry{RetryPolicy: middleware.DefaultRetryPolicy(), Delays: middleware.DefaultDelays()}
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

	// Retry is this group's failure policy, in place of the global one.
	// From YAML, the keys a group's retry: section sets override the global
	// policy's and the others are inherited from it (Parse starts the
	// group's policy as a copy of the global one). Default nil: the global
	// policy as is.
	Retry *Retry `yaml:"retry"`
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
	if c.Retry.RetryPolicy == (middleware.RetryPolicy{}) {
		c.Retry.RetryPolicy = middleware.DefaultRetryPolicy()
	}
	c.Retry.setDefaults()
}

// setDefaults fills the zero fields of r as middleware.RetryPolicy's
// SetDefaults does, and absent Delays with the default tiers.
func (r *Retry) setDefaults() {
	r.RetryPolicy.SetDefaults()
	if r.Delays == nil {
		r.Delays = middleware.DefaultDelays()
	}
}

// clone returns a copy of r that shares no memory with it.
func (r Retry) clone() Retry {
	r.Delays = slices.Clone(r.Delays)
	return r
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

// RetryFor returns the failure policy of the consumer group named group:
// its own, or the global one, with defaults filled. The result shares no
// memory with c.
func (c *Config) RetryFor(group string) Retry {
	r := c.effectiveRetry(group)
	r.setDefaults()
	return r
}
