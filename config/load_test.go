package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/config"
)

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want string // every problem, one per line
	}{
		{
			name: "UnknownTopLevelKey",
			yaml: "service: s\nsubscription:\n  billing: {}\n",
			want: `busline.yaml:2:1: subscription: unknown key "subscription" (did you mean "subscriptions"?)`,
		},
		{
			name: "UnknownKeyCaseInsensitive",
			yaml: "Service: s\n",
			want: `busline.yaml: service: is required: name the service, such as service: billing-api (it is the source of the events it publishes)
busline.yaml:1:1: Service: unknown key "Service" (did you mean "service"?)`,
		},
		{
			name: "UnknownNestedKey",
			yaml: "service: s\nsubscriptions:\n  billing:\n    concurency: 2\n",
			want: `busline.yaml:4:5: subscriptions.billing.concurency: unknown key "concurency" (did you mean "concurrency"?)`,
		},
		{
			name: "UnknownKeyContained",
			yaml: "service: s\nretry:\n  backoff:\n    elapsed: 1s\n",
			want: `busline.yaml:4:5: retry.backoff.elapsed: unknown key "elapsed" (did you mean "max_elapsed"?)`,
		},
		{
			name: "UnknownKeyWithoutSuggestion",
			yaml: "service: s\nretry:\n  policy: x\n",
			want: `busline.yaml:3:3: retry.policy: unknown key "policy" (known keys: attempts, backoff, delays)`,
		},
		{
			name: "WrongTypeInteger",
			yaml: "service: s\nsubscriptions:\n  billing:\n    timeout: 1s\n    concurrency: many\n",
			want: `busline.yaml:5:18: subscriptions.billing.concurrency: expected an integer, got "many"`,
		},
		{
			name: "QuotedIntegerIsAString",
			yaml: "service: s\nretry:\n  attempts: \"3\"\n",
			want: `busline.yaml:3:13: retry.attempts: expected an integer, got "3"`,
		},
		{
			name: "IntegerOutOfRange",
			yaml: "service: s\nretry:\n  attempts: 99999999999999999999\n",
			want: `busline.yaml:3:13: retry.attempts: expected an integer, got "99999999999999999999"`,
		},
		{
			name: "WrongTypeBool",
			yaml: "service: s\nsubscriptions:\n  billing:\n    ordered: yes\n",
			want: `busline.yaml:4:14: subscriptions.billing.ordered: expected true or false, got "yes"`,
		},
		{
			name: "WrongTypeNumber",
			yaml: "service: s\nretry:\n  backoff:\n    jitter: some\n",
			want: `busline.yaml:4:13: retry.backoff.jitter: expected a number, got "some"`,
		},
		{
			name: "WrongTypeString",
			yaml: "service: [a, b]\n",
			want: `busline.yaml:1:10: service: expected a string, got a list`,
		},
		{
			name: "WrongTypeMapping",
			yaml: "service: s\nretry: 3\n",
			want: `busline.yaml:2:8: retry: expected a mapping of keys to values, got "3"`,
		},
		{
			name: "WrongTypeList",
			yaml: "service: s\nretry:\n  delays: 10s\n",
			want: `busline.yaml:3:11: retry.delays: expected a list, got "10s" (write [a, b] or one "- item" per line)`,
		},
		{
			name: "DurationWord",
			yaml: "service: s\nsubscriptions:\n  billing:\n    timeout: fast\n",
			want: `busline.yaml:4:14: subscriptions.billing.timeout: expected a duration such as "30s" or "1m", got "fast"`,
		},
		{
			name: "DurationPlainInteger",
			yaml: "service: s\nsubscriptions:\n  billing:\n    timeout: 30\n",
			want: `busline.yaml:4:14: subscriptions.billing.timeout: expected a duration such as "30s" or "1m", got "30" (a number needs a unit: write "30s" or "30ms")`,
		},
		{
			name: "DurationInList",
			yaml: "service: s\nretry:\n  delays:\n    - 1s\n    - 1 minute\n",
			want: `busline.yaml:5:7: retry.delays[1]: expected a duration such as "30s" or "1m", got "1 minute"`,
		},
		{
			name: "DuplicateKey",
			yaml: "service: a\nservice: b\n",
			want: `busline.yaml:2:1: service: duplicate key "service" (first set at line 1): remove one of them`,
		},
		{
			name: "DuplicateNestedKey",
			yaml: "service: s\nsubscriptions:\n  billing:\n    concurrency: 1\n  billing:\n    concurrency: 2\n",
			want: `busline.yaml:5:3: subscriptions.billing: duplicate key "billing" (first set at line 3): remove one of them`,
		},
		{
			name: "InvalidYAML",
			yaml: "service: s\nretry:\n  attempts: [1, 2\n",
			want: `busline.yaml:3: invalid YAML: did not find expected ',' or ']'`,
		},
		{
			name: "InvalidYAMLUnclosedFlowMapping",
			yaml: "service: {s\n",
			want: `busline.yaml:2: invalid YAML: did not find expected ',' or '}'`,
		},
		{
			name: "InvalidYAMLKey",
			yaml: "service: s\nretry:\n  attempts: 1\n backoff: {}\n",
			want: `busline.yaml:4: invalid YAML: did not find expected key`,
		},
		{
			name: "TabIndentation",
			yaml: "service: s\nretry:\n\tattempts: 2\n",
			want: `busline.yaml:3: invalid YAML: found character that cannot start any token`,
		},
		{
			name: "Empty",
			yaml: "",
			want: "busline.yaml: empty config: at least `service:` is required",
		},
		{
			name: "OnlyComments",
			yaml: "# nothing yet\n\n",
			want: "busline.yaml: empty config: at least `service:` is required",
		},
		{
			name: "OnlyDocumentMarker",
			yaml: "---\n",
			want: "busline.yaml: empty config: at least `service:` is required",
		},
		{
			name: "TopLevelList",
			yaml: "- service: s\n",
			want: "busline.yaml:1:1: the top level must be a mapping of keys such as service: and transport:, got a list",
		},
		{
			name: "TopLevelScalar",
			yaml: "billing\n",
			want: `busline.yaml:1:1: the top level must be a mapping of keys such as service: and transport:, got "billing"`,
		},
		{
			name: "TwoDocuments",
			yaml: "service: a\n---\nservice: b\n",
			want: "busline.yaml:2: a config is a single YAML document: remove this --- line and the document after it",
		},
		{
			name: "TransportScalar",
			yaml: "service: s\ntransport: rabbitmq\n",
			want: `busline.yaml:2:12: transport: expected a mapping such as {kind: rabbitmq}, got "rabbitmq" (did you mean transport: {kind: rabbitmq}?)`,
		},
		{
			name: "TransportKindMissing",
			yaml: "service: s\ntransport:\n  rabbitmq:\n    url: amqp://localhost\n",
			want: `busline.yaml:2:1: transport: transport.kind is missing (did you mean kind: rabbitmq?)`,
		},
		{
			name: "TransportKindMissingSeveralSections",
			yaml: "service: s\ntransport:\n  rabbitmq: {}\n  kafka: {}\n",
			want: `busline.yaml:2:1: transport: transport.kind is missing: set it to the transport to use, one of kafka, rabbitmq`,
		},
		{
			name: "TransportKindNotAString",
			yaml: "service: s\ntransport:\n  kind: 3\n",
			want: `busline.yaml:3:9: transport.kind: expected a transport kind such as "rabbitmq", got "3"`,
		},
		{
			name: "MergeKeyOfAScalar",
			yaml: "service: s\nretry:\n  <<: 3\n",
			want: `busline.yaml:3:7: retry: a merge key << takes a mapping or a list of mappings, such as <<: *defaults`,
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

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	ps := problems(t, `service: billing
shutdown_grace: soon
subscriptions:
  billing:
    concurency: 2
    ordered: true
  audit:
    concurrency: 2
    ordered: true
`, nil)
	want := []config.Problem{
		{File: "busline.yaml", Line: 2, Column: 17, Path: "shutdown_grace", Message: `expected a duration such as "30s" or "1m", got "soon"`},
		{File: "busline.yaml", Line: 5, Column: 5, Path: "subscriptions.billing.concurency", Message: `unknown key "concurency" (did you mean "concurrency"?)`},
		{File: "busline.yaml", Line: 8, Column: 18, Path: "subscriptions.audit.concurrency", Message: "an ordered subscription must have concurrency 1, got 2: set concurrency: 1, or ordered: false"},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(ps), len(want), strs(ps))
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("problem %d = %+v, want %+v", i, ps[i], want[i])
		}
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `service: s
subscriptions:
  a: &fast
    concurrency: 4
    timeout: 2s
  b: *fast
  c:
    <<: *fast
    timeout: 5s
`)
	for group, want := range map[string]config.Subscription{
		"a": {Concurrency: 4, Timeout: 2 * time.Second},
		"b": {Concurrency: 4, Timeout: 2 * time.Second},
		"c": {Concurrency: 4, Timeout: 5 * time.Second},
	} {
		if got := cfg.SubscriptionFor(group); got != want {
			t.Errorf("SubscriptionFor(%s) = %+v, want %+v", group, got, want)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "ok.yaml")
		if err := os.WriteFile(path, []byte("service: billing\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg.Service != "billing" {
			t.Errorf("Service = %q, want billing", cfg.Service)
		}
	})
	t.Run("ProblemsNameTheFile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte("service: billing\nretry: {attempts: 0}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		want := "config: " + path + ":2:19: retry.attempts: must be >= 1 (1 means no immediate retry), got 0"
		if err == nil || err.Error() != want {
			t.Errorf("Load error = %v, want %s", err, want)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		_, err := config.Load(filepath.Join(dir, "missing.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load error = %v, want fs.ErrNotExist", err)
		}
		if errors.Is(err, config.ErrInvalid) {
			t.Errorf("Load of a missing file matches ErrInvalid: %v", err)
		}
		if err != nil && !strings.Contains(err.Error(), "missing.yaml") {
			t.Errorf("Load error %q does not name the file", err)
		}
	})
}

func TestParseAliasBombs(t *testing.T) {
	t.Parallel()
	// parse runs Parse with a deadline: aliases must not make it exponential.
	parse := func(t *testing.T, yaml string) error {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			_, err := config.Parse([]byte(yaml), "busline.yaml", nil)
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("Parse of %d bytes still running after 10s", len(yaml))
			return nil
		}
	}

	t.Run("NestedMerges", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("service: s\nsubscriptions:\n  g0: &g0 {concurrency: 2}\n")
		for i := 1; i <= 12; i++ {
			fmt.Fprintf(&b, "  g%d: &g%d {<<: [%s]}\n", i, i, strings.Repeat(fmt.Sprintf("*g%d, ", i-1), 10))
		}
		if err := parse(t, b.String()); err != nil {
			t.Errorf("Parse: %v", err)
		}
	})
	t.Run("FanOut", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("service: s\nretry: &r\n  delays: [" + strings.Repeat("1s, ", 2000) + "]\nsubscriptions:\n")
		for i := range 1000 {
			fmt.Fprintf(&b, "  g%d: {retry: *r}\n", i)
		}
		err := parse(t, b.String())
		if err == nil || !strings.Contains(err.Error(), "too many values through aliases") {
			t.Errorf("Parse error = %v, want too many values through aliases", err)
		}
	})
}
