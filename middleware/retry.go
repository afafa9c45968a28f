package middleware

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"

	"github.com/busline/busline/wire"
)

// RetryPolicy configures immediate retries. The zero value retries with the
// defaults below.
type RetryPolicy struct {
	// Attempts is the number of immediate attempts, the first included; 1
	// means no immediate retry. Default: 3.
	Attempts int

	// Initial is the wait before the first retry. Default: 100ms.
	Initial time.Duration

	// Max caps each wait. Default: 5s.
	Max time.Duration

	// Multiplier grows the wait after each retry. Default: 2.
	Multiplier float64

	// Jitter spreads each wait randomly by up to this fraction either way,
	// so that failing consumers do not retry in step. Default: 0.2; set a
	// negative value for none.
	Jitter float64

	// MaxElapsed stops retrying once this much time has passed since the
	// first attempt of this delivery. Default: 0, no limit.
	MaxElapsed time.Duration
}

// DefaultRetryPolicy returns the policy used when none is configured.
func DefaultRetryPolicy() RetryPolicy {
	var p RetryPolicy
	p.SetDefaults()
	return p
}

// SetDefaults fills the zero fields with their defaults.
func (p *RetryPolicy) SetDefaults() {
	if p.Attempts == 0 {
		p.Attempts = 3
	}
	if p.Initial == 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max == 0 {
		p.Max = 5 * time.Second
	}
	if p.Multiplier == 0 {
		p.Multiplier = 2
	}
	if p.Jitter == 0 {
		p.Jitter = 0.2
	}
}

// Validate returns every problem of p at once.
func (p RetryPolicy) Validate() error {
	var errs []error
	if p.Attempts < 1 {
		errs = append(errs, fmt.Errorf("retry attempts %d: must be at least 1 (1 = no immediate retry)", p.Attempts))
	}
	if p.Initial < 0 {
		errs = append(errs, fmt.Errorf("retry initial backoff %v is negative", p.Initial))
	}
	if p.Max < p.Initial {
		errs = append(errs, fmt.Errorf("retry max backoff %v is below the initial %v", p.Max, p.Initial))
	}
	if p.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("retry multiplier %v: must be at least 1", p.Multiplier))
	}
	if p.Jitter > 1 {
		errs = append(errs, fmt.Errorf("retry jitter %v: must be at most 1", p.Jitter))
	}
	if p.MaxElapsed < 0 {
		errs = append(errs, fmt.Errorf("retry max elapsed %v is negative", p.MaxElapsed))
	}
	return errors.Join(errs...)
}

// NewBackOff returns the policy's waits as a backoff.BackOff of
// github.com/cenkalti/backoff/v5: Initial first, each next one Multiplier
// times longer up to Max, each spread randomly by up to ±Jitter (none when
// Jitter is negative). Each retried delivery takes its own.
func (p RetryPolicy) NewBackOff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: max(p.Jitter, 0),
		Multiplier:          p.Multiplier,
		MaxInterval:         p.Max,
	}
	b.Reset()
	return b
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
					waits = p.NewBackOff()
				}
				wait := waits.NextBackOff()
				if p.MaxElapsed > 0 && time.Since(start)+wait > p.MaxElapsed {
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
