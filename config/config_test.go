package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/busline/busline/config"
	"github.com/busline/busline/middleware"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env returns a lookup function over vars, for Parse.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// mustParse parses yaml, failing the test on any error.
func mustParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "busline.yaml", nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// problems parses yaml with vars and returns the problems of its error,
// failing the test when Parse succeeds or returns another kind of error.
func problems(t *testing.T, yaml string, vars map[string]string) []config.Problem {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "busline.yaml", env(vars))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error; got %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("Parse returned a Config with an error")
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return e.Problems
}

// strs formats problems one per line, for comparisons.
func strs(ps []config.Problem) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, "\n")
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, "service: billing\n")

	if cfg.Service != "billing" {
		t.Errorf("Service = %q, want billing", cfg.Service)
	}
	if cfg.ShutdownGrace != 30*time.Second {
		t.Errorf("ShutdownGrace = %v, want 30s", cfg.ShutdownGrace)
	}
	if cfg.Transport.Kind != "memory" {
		t.Errorf("Transport.Kind = %q, want memory", cfg.Transport.Kind)
	}
	want := config.Retry{
		RetryPolicy: middleware.RetryPolicy{Attempts: 3, Backoff: middleware.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2, MaxElapsed: 0}},
		Delays:      []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute},
	}
	if !retryEqual(cfg.Retry, want) {
		t.Errorf("Retry = %+v, want %+v", cfg.Retry, want)
	}
	if len(cfg.Subscriptions) != 0 || len(cfg.Topics) != 0 {
		t.Errorf("Subscriptions = %v, Topics = %v, want both empty", cfg.Subscriptions, cfg.Topics)
	}
	if got, want := cfg.SubscriptionFor("unlisted"), (config.Subscription{Concurrency: 1}); got != want {
		t.Errorf("SubscriptionFor(unlisted) = %+v, want %+v", got, want)
	}
	if got := cfg.RetryFor("unlisted"); !retryEqual(got, want) {
		t.Errorf("RetryFor(unlisted) = %+v, want %+v", got, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func retryEqual(a, b config.Retry) bool {
	return a.Attempts == b.Attempts && a.Backoff == b.Backoff && slices.Equal(a.Delays, b.Delays) &&
		(a.Delays == nil) == (b.Delays == nil)
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `service: billing
shutdown_grace: 1m
retry:
  attempts: 1
  backoff:
    initial: 1s
    max: 1s
    multiplier: 1
    jitter: 0
    max_elapsed: 1h
  delays: [1s]
subscriptions:
  listed:
  tuned:
    concurrency: 8
    timeout: 2s
  strict:
    ordered: true
topics:
  order.created: orders-v1
`)
	want := config.Retry{
		RetryPolicy: middleware.RetryPolicy{Attempts: 1, Backoff: middleware.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 1, Jitter: 0, MaxElapsed: time.Hour}},
		Delays:      []time.Duration{time.Second},
	}
	if !retryEqual(cfg.Retry, want) {
		t.Errorf("Retry = %+v, want %+v", cfg.Retry, want)
	}
	if cfg.ShutdownGrace != time.Minute {
		t.Errorf("ShutdownGrace = %v, want 1m", cfg.ShutdownGrace)
	}
	for group, want := range map[string]config.Subscription{
		"listed":   {Concurrency: 1},
		"tuned":    {Concurrency: 8, Timeout: 2 * time.Second},
		"strict":   {Concurrency: 1, Ordered: true},
		"unlisted": {Concurrency: 1},
	} {
		if got := cfg.SubscriptionFor(group); got != want {
			t.Errorf("SubscriptionFor(%s) = %+v, want %+v", group, got, want)
		}
	}
	if _, ok := cfg.Subscriptions["listed"]; !ok {
		t.Errorf("group listed without settings is missing from Subscriptions")
	}
	if got := cfg.Topics["order.created"]; got != "orders-v1" {
		t.Errorf("Topics[order.created] = %q, want orders-v1", got)
	}
}

func TestRetryFor(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `service: billing
retry:
  attempts: 4
  backoff: {initial: 200ms, max: 2s}
  delays: [5s, 30s]
subscriptions:
  attempts-only:
    retry: {attempts: 1}
  no-delays:
    retry: {delays: []}
  absent-delays:
    retry: {attempts: 2}
  backoff-only:
    retry:
      backoff: {max: 10s, jitter: 0}
  other-delays:
    retry: {delays: [1m]}
`)
	global := config.Retry{
		RetryPolicy: middleware.RetryPolicy{Attempts: 4, Backoff: middleware.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.2}},
		Delays:      []time.Duration{5 * time.Second, 30 * time.Second},
	}
	with := func(f func(r *config.Retry)) config.Retry {
		r := global
		r.Delays = slices.Clone(global.Delays)
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		group string
		want  config.Retry
	}{
		{"Unlisted", "unlisted", global},
		{"AttemptsOnly", "attempts-only", with(func(r *config.Retry) { r.Attempts = 1 })},
		{"EmptyDelaysMeansNone", "no-delays", with(func(r *config.Retry) { r.Delays = []time.Duration{} })},
		{"AbsentDelaysInherited", "absent-delays", with(func(r *config.Retry) { r.Attempts = 2 })},
		{"BackoffFieldsOnly", "backoff-only", with(func(r *config.Retry) { r.Backoff.Max = 10 * time.Second; r.Backoff.Jitter = 0 })},
		{"OtherDelays", "other-delays", with(func(r *config.Retry) { r.Delays = []time.Duration{time.Minute} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := cfg.RetryFor(tt.group)
			if !retryEqual(got, tt.want) {
				t.Errorf("RetryFor(%s) = %+v, want %+v", tt.group, got, tt.want)
			}
		})
	}

	t.Run("ResultIsACopy", func(t *testing.T) {
		t.Parallel()
		r := cfg.RetryFor("other-delays")
		r.Delays[0] = 0
		g := cfg.RetryFor("unlisted")
		g.Delays[0] = 0
		if got := cfg.RetryFor("other-delays").Delays[0]; got != time.Minute {
			t.Errorf("RetryFor shares its override's delays: got %v after a change", got)
		}
		if got := cfg.Retry.Delays[0]; got != 5*time.Second {
			t.Errorf("RetryFor shares the global delays: got %v after a change", got)
		}
	})
}

func TestRetryForConfigBuiltInGo(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{
		Service:       "billing",
		Subscriptions: map[string]config.Subscription{"g": {Retry: &config.Retry{RetryPolicy: middleware.RetryPolicy{Attempts: 7}}}},
	}
	got := cfg.RetryFor("g")
	want := config.Retry{
		RetryPolicy: middleware.RetryPolicy{Attempts: 7, Backoff: middleware.DefaultBackoff()},
		Delays:      []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute},
	}
	if !retryEqual(got, want) {
		t.Errorf("RetryFor(g) = %+v, want %+v", got, want)
	}
	if got := cfg.SubscriptionFor("g").Concurrency; got != 1 {
		t.Errorf("SubscriptionFor(g).Concurrency = %d, want 1", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want string // every problem, one per line
	}{
		{
			name: "OrderedNeedsConcurrencyOne",
			yaml: "service: s\nsubscriptions:\n  billing:\n    ordered: true\n    concurrency: 2\n",
			want: `busline.yaml:5:18: subscriptions.billing.concurrency: an ordered subscription must have concurrency 1, got 2: set concurrency: 1, or ordered: false`,
		},
		{
			name: "OrderedHasNoDelays",
			yaml: "service: s\nsubscriptions:\n  billing:\n    ordered: true\n    retry: {delays: [1s]}\n",
			want: `busline.yaml:5:21: subscriptions.billing.retry.delays: an ordered subscription has no delayed redelivery (it retries in place, then sends to the poison lane): remove delays`,
		},
		{
			name: "ServiceMissing",
			yaml: "shutdown_grace: 1s\n",
			want: "busline.yaml: service: is required: name the service, such as service: billing-api (it is the source of the events it publishes)",
		},
		{
			name: "ServiceCharset",
			yaml: "service: my service\n",
			want: `busline.yaml:1:10: service: must be 1 to 200 letters, digits, ".", "_" or "-", got "my service"`,
		},
		{
			name: "ServiceTooLong",
			yaml: "service: " + strings.Repeat("a", 201) + "\n",
			want: `busline.yaml:1:10: service: must be 1 to 200 letters, digits, ".", "_" or "-", got "` + strings.Repeat("a", 80) + `…"`,
		},
		{
			name: "ShutdownGrace",
			yaml: "service: s\nshutdown_grace: -1s\n",
			want: "busline.yaml:2:17: shutdown_grace: must be > 0, such as 30s, got -1s",
		},
		{
			name: "TransportKindCase",
			yaml: "service: s\ntransport:\n  kind: RabbitMQ\n",
			want: `busline.yaml:3:9: transport.kind: must be a transport kind of lower-case letters, digits, "_" and "-", such as "rabbitmq", got "RabbitMQ" (did you mean "rabbitmq"?)`,
		},
		{
			name: "RetryRanges",
			yaml: `service: s
retry:
  attempts: 0
  backoff:
    initial: 0s
    multiplier: 0.5
    jitter: 1.5
    max_elapsed: -1s
  delays: [1s, 0s]
`,
			want: `busline.yaml:3:13: retry.attempts: must be >= 1 (1 means no immediate retry), got 0
busline.yaml:5:14: retry.backoff.initial: must be > 0, such as 100ms, got 0s
busline.yaml:6:17: retry.backoff.multiplier: must be a number >= 1, got 0.5
busline.yaml:7:13: retry.backoff.jitter: must be from 0 to 1 (0 means no jitter), got 1.5
busline.yaml:8:18: retry.backoff.max_elapsed: must be >= 0 (0 means no limit), got -1s
busline.yaml:9:16: retry.delays[1]: must be > 0, got 0s (an empty list, delays: [], means no delayed redelivery)`,
		},
		{
			name: "MaxBelowInitial",
			yaml: "service: s\nretry:\n  backoff: {initial: 10s}\n",
			want: "busline.yaml:3:22: retry.backoff.initial: must be <= backoff.max (5s), got 10s",
		},
		{
			name: "NaNMultiplier",
			yaml: "service: s\nretry:\n  backoff: {multiplier: .nan}\n",
			want: "busline.yaml:3:25: retry.backoff.multiplier: must be a number >= 1, got NaN",
		},
		{
			name: "OverrideBlamedForWhatItSets",
			yaml: `service: s
retry:
  backoff: {initial: 1s, max: 2s}
subscriptions:
  billing:
    retry:
      attempts: 0
      backoff: {max: 500ms}
`,
			want: `busline.yaml:7:17: subscriptions.billing.retry.attempts: must be >= 1 (1 means no immediate retry), got 0
busline.yaml:8:22: subscriptions.billing.retry.backoff.max: must be >= backoff.initial (1s), got 500ms`,
		},
		{
			name: "SubscriptionRanges",
			yaml: "service: s\nsubscriptions:\n  bad group:\n    concurrency: 0\n    timeout: -1s\n  big:\n    concurrency: 1025\n",
			want: `busline.yaml:3:3: subscriptions.bad group: consumer group name must be 1 to 200 letters, digits, ".", "_" or "-", got "bad group"
busline.yaml:4:18: subscriptions.bad group.concurrency: must be from 1 to 1024, got 0
busline.yaml:5:14: subscriptions.bad group.timeout: must be >= 0 (0 means no timeout), got -1s
busline.yaml:7:18: subscriptions.big.concurrency: must be from 1 to 1024, got 1025`,
		},
		{
			name: "Topics",
			yaml: "service: s\ntopics:\n  order created: orders\n  order.paid: \"orders/paid\"\n",
			want: `busline.yaml:3:3: topics.order created: event name must be 1 to 200 letters, digits, ".", "_" or "-", got "order created"
busline.yaml:4:15: topics.order.paid: wire topic must be 1 to 200 letters, digits, ".", "_" or "-", got "orders/paid"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := strs(problems(t, tt.yaml, nil)); got != tt.want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestValidateConfigBuiltInGo(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{
		Service:       "billing",
		ShutdownGrace: time.Second,
		Transport:     config.Transport{Kind: "memory"},
		Retry: config.Retry{
			RetryPolicy: middleware.RetryPolicy{Attempts: 1, Backoff: middleware.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 1}},
		},
		Subscriptions: map[string]config.Subscription{"g": {Concurrency: 2, Ordered: true}},
	}
	err := cfg.Validate()
	want := "config: subscriptions.g.concurrency: an ordered subscription must have concurrency 1, got 2: set concurrency: 1, or ordered: false"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
	cfg.Subscriptions["g"] = config.Subscription{Concurrency: 1, Ordered: true}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() after the fix = %v, want nil", err)
	}
	// A policy built in Go means what the bus makes of it: its zero fields
	// take the defaults, and only what a group sets differently is blamed
	// on it.
	cfg = &config.Config{Service: "billing", ShutdownGrace: time.Second, Transport: config.Transport{Kind: "memory"},
		Subscriptions: map[string]config.Subscription{
			"fine": {Concurrency: 1, Retry: &config.Retry{RetryPolicy: middleware.RetryPolicy{Attempts: 7}}},
			"bad":  {Concurrency: 1, Retry: &config.Retry{RetryPolicy: middleware.RetryPolicy{Backoff: middleware.Backoff{Initial: time.Second, Max: time.Millisecond}}}},
		}}
	want = "config: subscriptions.bad.retry.backoff.max: must be >= backoff.initial (1s), got 1ms"
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
}
