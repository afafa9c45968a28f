package middleware

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"

	"github.com/busline/busline/wire"
)

// RetryPolicy is the immediate-retry part of a failure policy: a failed
// message is retried in place Attempts times in all, waiting per Backoff in
// between. It is the one policy type of busline: bus.Config and
// bus.WithRetry take it, and package config reads it from YAML (keys
// attempts and backoff) and reports its Validate problems with their file
// positions. The zero value retries with the defaults below.
type RetryPolicy struct {
	// Attempts is the number of immediate attempts, the first included; 1
	// means no immediate retry. Default: 3.
	Attempts int `yaml:"attempts"`

	// Backoff is the wait between attempts. Default (the zero Backoff):
	// DefaultBackoff().
	Backoff Backoff `yaml:"backoff"`
}

// Backoff is an exponential backoff with jitter: the n-th wait is
// Initial*Multiplier^(n-1), capped at Max, spread randomly by up to ±Jitter
// of itself.
//
// Its zero value means DefaultBackoff(). In a Backoff that sets any field,
// the zero fields whose zero is not valid (Initial, Max, Multiplier) take
// their defaults, while a zero Jitter means no jitter and a zero MaxElapsed
// no limit.
type Backoff struct {
	// Initial is the first wait. Default 100ms; must be > 0.
	Initial time.Duration `yaml:"initial"`

	// Max caps each wait. Default 5s (or Initial, when that is longer);
	// must be >= Initial.
	Max time.Duration `yaml:"max"`

	// Multiplier grows each wait from the previous one. Default 2; must be
	// >= 1 (1 waits Initial every time).
	Multiplier float64 `yaml:"multiplier"`

	// Jitter spreads each wait randomly by up to this fraction either way,
	// so that failing consumers do not retry in step. 0 means none; must be
	// from 0 to 1. DefaultBackoff's is 0.2.
	Jitter float64 `yaml:"jitter"`

	// MaxElapsed stops retrying once this much time has passed since the
	// first attempt of this delivery. 0 means no limit; must be >= 0.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
}

// DefaultBackoff returns the backoff used when none is configured: 100ms,
// doubling up to 5s, ±20% jitter, no elapsed limit.
func DefaultBackoff() Backoff {
	return Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
}

// DefaultRetryPolicy returns the policy used when none is configured: 3
// attempts, DefaultBackoff().
func DefaultRetryPolicy() RetryPolicy {
	var p RetryPolicy
	p.SetDefaults()
	return p
}

// SetDefaults fills the zero fields with their defaults, as described on
// RetryPolicy and Backoff.
func (p *RetryPolicy) SetDefaults() {
	if p.Attempts == 0 {
		p.Attempts = 3
	}
	p.Backoff.SetDefaults()
}

// SetDefaults makes the zero Backoff DefaultBackoff(), and fills a zero
// Initial, Max or Multiplier of any other with its default.
func (b *Backoff) SetDefaults() {
	def := DefaultBackoff()
	if *b == (Backoff{}) {
		*b = def
		return
	}
	if b.Initial == 0 {
		b.Initial = def.Initial
	}
	if b.Max == 0 {
		b.Max = max(def.Max, b.Initial)
	}
	if b.Multiplier == 0 {
		b.Multiplier = def.Multiplier
	}
}

// Validate returns every problem of p as it is (call SetDefaults first to
// validate what a policy means), joined; each is a *PolicyError.
func (p RetryPolicy) Validate() error {
	var errs []error
	if p.Attempts < 1 {
		errs = append(errs, policyError("attempts", "must be >= 1 (1 means no immediate retry), got {attempts}", "attempts", strconv.Itoa(p.Attempts)))
	}
	b := p.Backoff
	initial, maxWait := b.Initial.String(), b.Max.String()
	if b.Initial <= 0 {
		errs = append(errs, policyError("backoff.initial", "must be > 0, such as 100ms, got {backoff.initial}", "backoff.initial", initial))
	} else if b.Max < b.Initial {
		e := policyError("backoff.max", "must be >= backoff.initial ({backoff.initial}), got {backoff.max}", "backoff.initial", initial, "backoff.max", maxWait)
		e.Alt = policyError("backoff.initial", "must be <= backoff.max ({backoff.max}), got {backoff.initial}", "backoff.initial", initial, "backoff.max", maxWait)
		errs = append(errs, e)
	}
	if !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0) {
		errs = append(errs, policyError("backoff.multiplier", "must be a number >= 1, got {backoff.multiplier}", "backoff.multiplier", formatFloat(b.Multiplier)))
	}
	if !(b.Jitter >= 0 && b.Jitter <= 1) {
		errs = append(errs, policyError("backoff.jitter", "must be from 0 to 1 (0 means no jitter), got {backoff.jitter}", "backoff.jitter", formatFloat(b.Jitter)))
	}
	if b.MaxElapsed < 0 {
		errs = append(errs, policyError("backoff.max_elapsed", "must be >= 0 (0 means no limit), got {backoff.max_elapsed}", "backoff.max_elapsed", b.MaxElapsed.String()))
	}
	return errors.Join(errs...)
}

// ValidateDelays returns every problem of a list of delayed-redelivery
// tiers (each must be > 0), joined; each is a *PolicyError whose Field is
// "delays[i]".
func ValidateDelays(delays []time.Duration) error {
	var errs []error
	for i, d := range delays {
		if d <= 0 {
			f := "delays[" + strconv.Itoa(i) + "]"
			errs = append(errs, policyError(f, "must be > 0, got {"+f+"} (an empty list, delays: [], means no delayed redelivery)", f, d.String()))
		}
	}
	return errors.Join(errs...)
}

// PolicyError is one problem of a failure policy, found by
// RetryPolicy.Validate or ValidateDelays.
type PolicyError struct {
	// Field is the field at fault, spelt as its YAML key path:
	// "attempts", "backoff.initial", "delays[1]".
	Field string

	// Rule says what is wrong, with the values it quotes written {field}:
	// "must be >= backoff.initial ({backoff.initial}), got {backoff.max}".
	Rule string

	// Values holds the value of each field the rule quotes, formatted.
	Values map[string]string

	// Alt, when not nil, is the same problem blamed on another field it
	// involves (backoff.initial for a backoff.max below it), for a caller
	// that prefers to blame the field a user wrote.
	Alt *PolicyError
}

// Error returns "field: rule" with the values filled in.
func (e *PolicyError) Error() string {
	return e.Field + ": " + e.Message(func(_, v string) string { return v })
}

// Message returns the rule with each quoted value replaced by show(field,
// value): package config shows a value from the environment as ${VAR}.
func (e *PolicyError) Message(show func(field, value string) string) string {
	msg := e.Rule
	for f, v := range e.Values {
		msg = strings.ReplaceAll(msg, "{"+f+"}", show(f, v))
	}
	return msg
}

func policyError(field, rule string, kv ...string) *PolicyError {
	e := &PolicyError{Field: field, Rule: rule, Values: make(map[string]string, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Values[kv[i]] = kv[i+1]
	}
	return e
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// NewBackOff returns b's waits as a backoff.BackOff of
// github.com/cenkalti/backoff/v5: Initial first, each next one Multiplier
// times longer up to Max, each spread randomly by up to ±Jitter. Each
// retried delivery takes its own. MaxElapsed is the caller's to apply.
func (b Backoff) NewBackOff() *backoff.ExponentialBackOff {
	eb := &backoff.ExponentialBackOff{
		InitialInterval:     b.Initial,
		RandomizationFactor: max(b.Jitter, 0),
		Multiplier:          b.Multiplier,
		MaxInterval:         b.Max,
	}
	eb.Reset()
	return eb
}

// Retry calls the handler up to p.Attempts times, waiting p.Backoff between
// attempts. It never retries a permanent error (see Permanent), and never
// retries once the message's own context is done: a cancelled context means
// the consumer is stopping, and the message is left for redelivery. Each
// attempt's context carries its number (see Attempt), and every failure is
// recorded in the message's wire.MetaAttempts and wire.MetaFirstFailure metadata.
func Retry(p RetryPolicy) message.HandlerMiddleware {
	p.SetDefaults()
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			orig := msg.Context()
			defer msg.SetContext(orig)
			start := time.Now()
			failed := failedAttempts(msg)
			var waits *backoff.ExponentialBackOff
			for i := 1; ; i++ {
				msg.SetContext(withAttempt(orig, failed+1))
				out, err := h(msg)
				if err == nil {
					return out, nil
				}
				if orig.Err() != nil {
					return nil, err // stopping: not a failure of the message
				}
				failed++
				recordFailure(msg, failed)
				if i >= p.Attempts || IsPermanent(err) {
					return nil, err
				}
				if waits == nil {
					waits = p.Backoff.NewBackOff()
				}
				wait := waits.NextBackOff()
				if p.Backoff.MaxElapsed > 0 && time.Since(start)+wait > p.Backoff.MaxElapsed {
					return nil, err
				}
				if !sleep(orig, wait) {
					return nil, err
				}
			}
		}
	}
}

// recordFailure notes one more failed attempt in msg's metadata.
func recordFailure(msg *message.Message, failed int) {
	msg.Metadata.Set(wire.MetaAttempts, strconv.Itoa(failed))
	if msg.Metadata.Get(wire.MetaFirstFailure) == "" {
		msg.Metadata.Set(wire.MetaFirstFailure, wire.FormatTime(time.Now()))
	}
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
