package main_test

import (
	"strings"
	"testing"

	"github.com/busline/busline/config"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "ok.yaml", "service: checkout\ntransport:\n  kind: redis\n  redis: {addr: 127.0.0.1:6379}\nsubscriptions:\n  billing: {}\n")
		r := mustRun(t, "config", "validate", path)
		if !strings.Contains(r.stdout, "ok (service checkout, transport redis, groups: billing)") {
			t.Errorf("validate: %s", r)
		}
	})
	t.Run("Broken", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "broken.yaml", "service: checkout\nretry:\n  atempts: 2\n  delays: [10]\nsubscriptions:\n  billing: {concurrency: 0}\n")
		r := expectExit(t, 1, "3 problems", "config", "validate", path)
		for _, want := range []string{
			`broken.yaml:3:3: retry.atempts: unknown key "atempts" (did you mean "attempts"?)`,
			`broken.yaml:4:12: retry.delays[0]: expected a duration`,
			`subscriptions.billing.concurrency`,
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("validate: no %q in\n%s", want, r.stderr)
			}
		}
	})
	t.Run("BrokenTransportSection", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "broken.yaml", "service: checkout\ntransport:\n  kind: rabbitmq\n  rabbitmq:\n    urll: amqp://localhost/\n")
		expectExit(t, 1, `broken.yaml:5:5: transport.rabbitmq.urll: unknown key "urll" (did you mean "url"?)`, "config", "validate", path)
	})
	t.Run("UnknownKind", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "nats.yaml", "service: checkout\ntransport: {kind: nats}\n")
		expectExit(t, 1, `unknown transport kind "nats": busctl knows kafka, memory, rabbitmq, redis`, "config", "validate", path)
	})
	t.Run("UndefinedVariable", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "env.yaml", "service: ${BUSCTL_TEST_UNSET_VARIABLE}\n")
		expectExit(t, 1, "BUSCTL_TEST_UNSET_VARIABLE", "config", "validate", path)
	})
	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		expectExit(t, 1, "no-such-file.yaml", "config", "validate", "no-such-file.yaml")
	})
	t.Run("NoFile", func(t *testing.T) {
		t.Parallel()
		expectExit(t, 2, "expected one FILE", "config", "validate")
	})
	t.Run("BrokerDown", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "down.yaml", "service: checkout\ntransport:\n  kind: rabbitmq\n  rabbitmq: {url: \"amqp://guest:s3cret@127.0.0.1:1/\"}\n")
		r := expectExit(t, 1, "cannot reach the rabbitmq broker", "config", "validate", "--connect", "--timeout", "5s", path)
		if strings.Contains(r.stderr, "s3cret") {
			t.Errorf("the password leaked: %s", r.stderr)
		}
	})
}

func TestConfigShow(t *testing.T) {
	t.Setenv("BUSCTL_TEST_RABBIT_URL", "amqp://app:s3cret@mq.internal:5672/prod")
	path := writeFile(t, "app.yaml", `service: checkout
transport:
  kind: rabbitmq
  rabbitmq: {url: "${BUSCTL_TEST_RABBIT_URL}", prefetch: 16}
retry: {delays: [5s, 1m]}
subscriptions:
  billing: {concurrency: 4, retry: {attempts: 7}}
topics: {orders.placed: orders.v1}
`)
	r := mustRun(t, "config", "show", path)
	if strings.Contains(r.stdout, "s3cret") {
		t.Fatalf("config show printed the password:\n%s", r.stdout)
	}
	for _, want := range []string{
		`url: "amqp://app:xxxxx@mq.internal:5672/prod"`,
		"shutdown_grace: 30s",        // a default
		"    prefetch: 16\n",         // set by the file
		"    publish_timeout: 30s\n", // the transport's default
		"    consumer_timeout: 30m\n",
		"    concurrency: 4\n    timeout: 0s\n    ordered: false\n    retry:\n      attempts: 7\n",
		"      delays: [5s, 1m]", // inherited by billing
		"orders.placed: orders.v1",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config show: no %q in\n%s", want, r.stdout)
		}
	}
	// What show prints is a configuration that means the same.
	shown, err := config.Parse([]byte(r.stdout), "shown.yaml", nil)
	if err != nil {
		t.Fatalf("config show's output does not load: %v\n%s", err, r.stdout)
	}
	orig, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := shown.RetryFor("billing"), orig.RetryFor("billing"); a.Attempts != b.Attempts || len(a.Delays) != len(b.Delays) || a.Backoff != b.Backoff {
		t.Errorf("billing's policy changed through show: %+v, want %+v", a, b)
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{{"config", "validate"}, {"config", "show"}, {"publish"}, {"tail"},
		{"poison", "list"}, {"poison", "show"}, {"poison", "replay"}, {"poison", "purge"}} {
		r := mustRun(t, append(cmd, "--help")...)
		if !strings.Contains(r.stdout, "Usage:\n  busctl "+strings.Join(cmd, " ")+" ") || !strings.Contains(r.stdout, "Flags:") ||
			strings.Contains(r.stdout, "Exit codes:") {
			t.Errorf("%v --help is not its own:\n%s", cmd, r.stdout)
		}
	}
	if r := mustRun(t, "--help"); !strings.Contains(r.stdout, "Exit codes:") {
		t.Errorf("busctl --help:\n%s", r.stdout)
	}
	// A group's help lists its own subcommands, not busctl's.
	if r := mustRun(t, "poison", "--help"); !strings.Contains(r.stdout, "Usage:\n  busctl poison [command]") ||
		!strings.Contains(r.stdout, "replay") || strings.Contains(r.stdout, "Exit codes:") {
		t.Errorf("busctl poison --help:\n%s", r.stdout)
	}
	expectExit(t, 2, "a subcommand is needed: list, show, replay, purge", "poison")
	expectExit(t, 2, `unknown command "frobnicate"`, "frobnicate")
	expectExit(t, 2, `unknown command "lst" for "busctl poison" (did you mean list?)`, "poison", "lst")
	expectExit(t, 2, "unknown flag: --bogus", "poison", "list", "--bogus")
	expectExit(t, 2, "unexpected argument \"extra\"", "poison", "list", "extra", "--config", "x.yaml")
	r := busctl(t, "")
	if r.code != 2 || !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("busctl with no command: %s", r)
	}
	// Shell completion: the scripts, and completion of values from the config.
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if r := mustRun(t, "completion", shell); !strings.Contains(r.stdout, "busctl") || len(r.stdout) < 1000 {
			t.Errorf("completion %s:\n%s", shell, r)
		}
	}
	shop := writeFile(t, "shop.yaml", "service: shop\nsubscriptions: {billing: {}, shipping: {}}\ntopics: {orders.placed: shop.orders}\n")
	if r := mustRun(t, "__complete", "poison", "list", "--config", shop, "--group", ""); !strings.HasPrefix(r.stdout, "billing\nshipping\n:4\n") {
		t.Errorf("completion of --group:\n%s", r)
	}
	if r := mustRun(t, "__complete", "publish", "--config", shop, "--event", ""); !strings.HasPrefix(r.stdout, "orders.placed\n:4\n") {
		t.Errorf("completion of --event:\n%s", r)
	}
	mem := writeFile(t, "mem.yaml", "service: checkout\n")
	expectExit(t, 2, "pass --topic T or --event NAME", "poison", "list", "--config", mem, "--group", "billing")
	expectExit(t, 2, "--config FILE is required", "poison", "list", "--group", "billing", "--topic", "orders")
	expectExit(t, 2, "select the messages to purge with --all, --id ID or --older-than D", "poison", "purge", "--config", mem, "--group", "billing", "--topic", "orders")
	expectExit(t, 2, "the payload is not valid JSON", "publish", "--config", mem, "--event", "orders.placed", "--data", "{nope")
	expectExit(t, 2, "invalid name", "poison", "list", "--config", mem, "--group", "bill ing", "--topic", "orders")
	// Memory works, on a bus of its own, and says so.
	r = mustRun(t, "poison", "list", "--config", mem, "--group", "billing", "--topic", "orders")
	if !strings.Contains(r.stderr, "memory transport, which keeps messages inside one process") || !strings.Contains(r.stdout, "is empty") {
		t.Errorf("poison list on memory: %s", r)
	}
}

// TestConfigShowRedactsEverySecret shows configurations whose passwords come
// from ${VAR}s holding characters that break URL parsing ("/", "%", "#",
// "?", a space, "@"), in URLs and in password fields of every transport,
// and finds none of them in the output.
func TestConfigShowRedactsEverySecret(t *testing.T) {
	passwords := map[string]string{
		"Slash": "with/slash", "Percent": "p%zz", "Hash": "12#34", "Question": "12?34",
		"Space": "spa ce9", "At": "a@b", "Plain": "s3cret", "Escaped": "p%2Fw",
	}
	for name, pw := range passwords {
		t.Run(name, func(t *testing.T) {
			t.Setenv("BUSCTL_TEST_PW", pw)
			for kind, section := range map[string]string{
				"rabbitmq": `{url: "amqp://u:${BUSCTL_TEST_PW}@mq.internal:5672/prod"}`,
				"redis":    `{url: "redis://u:${BUSCTL_TEST_PW}@cache:6379/0", password: "${BUSCTL_TEST_PW}"}`,
				"kafka":    `{brokers: [k1:9092], sasl: {mechanism: PLAIN, username: u, password: "${BUSCTL_TEST_PW}"}}`,
			} {
				path := writeFile(t, kind+".yaml", "service: checkout\ntransport:\n  kind: "+kind+"\n  "+kind+": "+section+"\n")
				// Some of these URLs do not parse: config show prints the
				// configuration, then says it is invalid.
				r := busctl(t, "", "config", "show", path)
				if r.code != 0 && (r.code != 1 || !strings.Contains(r.stderr, "the configuration shown is not valid")) {
					t.Fatalf("%s: %s", kind, r)
				}
				// The secret, and what is left of it once the parser split it
				// at the character it chokes on.
				for _, leak := range append([]string{pw}, strings.FieldsFunc(pw, func(r rune) bool { return strings.ContainsRune("/%#? @", r) })...) {
					if len(leak) >= 2 && strings.Contains(strings.ReplaceAll(r.stdout, path, ""), leak) {
						t.Errorf("%s: config show printed %q of the password %q:\n%s", kind, leak, pw, r.stdout)
					}
				}
				if !strings.Contains(r.stdout, "xxxxx") {
					t.Errorf("%s: nothing redacted:\n%s", kind, r.stdout)
				}
				if _, err := config.Parse([]byte(r.stdout), "shown.yaml", nil); err != nil {
					t.Errorf("%s: config show's output does not load: %v\n%s", kind, err, r.stdout)
				}
			}
		})
	}
}
