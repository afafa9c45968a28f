package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/config"
)

// rabbit is a transport's settings, as a transport package would declare them.
type rabbit struct {
	URL      string        `yaml:"url"`
	Prefetch int           `yaml:"prefetch"`
	Timeout  time.Duration `yaml:"timeout"`
	Exchange exchange      `yaml:"exchange"`
	TLS      *tlsSettings  `yaml:"tls"`
	Queues   []string      `yaml:"queues"`
	Headers  map[string]string
	Ignored  string `yaml:"-"`
}

type exchange struct {
	Name    string        `yaml:"name"`
	Durable bool          `yaml:"durable"`
	Linger  time.Duration `yaml:"linger"`
}

type tlsSettings struct {
	Insecure bool `yaml:"insecure"`
}

func TestTransportDecode(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `service: s
transport:
  kind: rabbitmq
  rabbitmq:
    url: amqp://localhost:5672/
    timeout: 3s
    exchange:
      name: events
      linger: 250ms
    tls: {insecure: true}
    queues: [a, b]
    headers: {x-app: billing}
  kafka:
    brokers: whatever, it is not decoded
`)
	if !cfg.Transport.HasSection("rabbitmq") || !cfg.Transport.HasSection("kafka") || cfg.Transport.HasSection("nats") {
		t.Errorf("HasSection(rabbitmq, kafka, nats) = %v, %v, %v; want true, true, false",
			cfg.Transport.HasSection("rabbitmq"), cfg.Transport.HasSection("kafka"), cfg.Transport.HasSection("nats"))
	}
	got := rabbit{Prefetch: 10, Exchange: exchange{Durable: true}}
	if err := cfg.Transport.Decode(&got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.URL != "amqp://localhost:5672/" || got.Prefetch != 10 || got.Timeout != 3*time.Second ||
		got.Exchange != (exchange{Name: "events", Durable: true, Linger: 250 * time.Millisecond}) ||
		got.TLS == nil || !got.TLS.Insecure || len(got.Queues) != 2 || got.Headers["x-app"] != "billing" {
		t.Errorf("Decode = %+v (tls %+v), want the section over the defaults", got, got.TLS)
	}
}

func TestTransportDecodeProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		section string // the lines under "  rabbitmq:"
		want    string
	}{
		{
			name:    "UnknownKey",
			section: "    url: x\n    prefetc: 3\n",
			want:    `config: busline.yaml:6:5: transport.rabbitmq.prefetc: unknown key "prefetc" (did you mean "prefetch"?)`,
		},
		{
			name:    "UnknownNestedKey",
			section: "    exchange:\n      nme: events\n",
			want:    `config: busline.yaml:6:7: transport.rabbitmq.exchange.nme: unknown key "nme" (did you mean "name"?)`,
		},
		{
			name:    "BadNestedDuration",
			section: "    exchange:\n      linger: 5\n",
			want:    `config: busline.yaml:6:15: transport.rabbitmq.exchange.linger: expected a duration such as "30s" or "1m", got "5" (a number needs a unit: write "5s" or "5ms")`,
		},
		{
			name:    "IgnoredFieldIsUnknown",
			section: "    ignored: x\n",
			want:    `config: busline.yaml:5:5: transport.rabbitmq.ignored: unknown key "ignored" (known keys: url, prefetch, timeout, exchange, tls, queues, headers)`,
		},
		{
			name:    "EveryProblem",
			section: "    prefetch: lots\n    tls: {insecure: maybe}\n",
			want: `config: 2 problems:
	busline.yaml:5:15: transport.rabbitmq.prefetch: expected an integer, got "lots"
	busline.yaml:6:21: transport.rabbitmq.tls.insecure: expected true or false, got "maybe"`,
		},
		{
			name:    "NotAMapping",
			section: "    - url\n",
			want:    `config: busline.yaml:5:5: transport.rabbitmq: expected a mapping of keys to values, got a list`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustParse(t, "service: s\ntransport:\n  kind: rabbitmq\n  rabbitmq:\n"+tt.section)
			var into rabbit
			err := cfg.Transport.Decode(&into)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Decode error:\n%v\nwant:\n%s", err, tt.want)
			}
			var e *config.Error
			if !errors.As(err, &e) || !errors.Is(err, config.ErrInvalid) {
				t.Errorf("Decode error %T is not a *config.Error matching ErrInvalid", err)
			}
		})
	}
}

func TestTransportDecodeConcurrently(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, "service: s\ntransport:\n  kind: rabbitmq\n  rabbitmq:\n    url: x\n    prefetc: 1\n")
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			var into rabbit
			errs <- cfg.Transport.Decode(&into)
		}()
	}
	for range n {
		select {
		case err := <-errs:
			if err == nil || !strings.Contains(err.Error(), `did you mean "prefetch"?`) {
				t.Errorf("Decode = %v, want an unknown key error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Decode did not return within 10s")
		}
	}
}

func TestTransportDecodeWithoutSection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
	}{
		{"NoTransport", "service: s\n"},
		{"OtherKindsSection", "service: s\ntransport:\n  kind: rabbitmq\n  kafka: {brokers: [x]}\n"},
		{"EmptySection", "service: s\ntransport:\n  kind: rabbitmq\n  rabbitmq:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustParse(t, tt.yaml)
			into := rabbit{URL: "default"}
			if err := cfg.Transport.Decode(&into); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if into.URL != "default" {
				t.Errorf("Decode changed URL to %q without a section", into.URL)
			}
		})
	}
	t.Run("BuiltInGo", func(t *testing.T) {
		t.Parallel()
		tr := config.Transport{Kind: "memory"}
		into := rabbit{URL: "default"}
		if err := tr.Decode(&into); err != nil || into.URL != "default" {
			t.Errorf("Decode = %v, URL %q; want nil and the default", err, into.URL)
		}
		if tr.HasSection("memory") {
			t.Errorf("HasSection(memory) = true for a Transport built in Go")
		}
	})
}

func TestTransportDecodeNeedsAStructPointer(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, "service: s\ntransport:\n  kind: rabbitmq\n  rabbitmq: {url: x}\n")
	var s rabbit
	var m map[string]any
	for _, into := range []any{nil, s, &m, (*rabbit)(nil)} {
		err := cfg.Transport.Decode(into)
		if err == nil {
			t.Errorf("Decode(%T) = nil, want an error", into)
			continue
		}
		if errors.Is(err, config.ErrInvalid) {
			t.Errorf("Decode(%T) = %v, a programming error reported as an invalid config", into, err)
		}
	}
}
