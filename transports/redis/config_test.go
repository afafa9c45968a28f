package redis_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/busline/busline/transports/redis"
)

// A Config prints, logs and marshals without its password or the password
// of its URL, whatever the verb, handler or encoder.
func TestConfigHidesSecrets(t *testing.T) {
	t.Parallel()
	const pass, urlPass = "s3cret-Pa55", "url-Pa55w0rd"
	for _, cfg := range []redis.Config{
		{Addr: "127.0.0.1:6379", Username: "app", Password: pass},
		{URL: "rediss://app:" + urlPass + "@redis.example:6380/0", Password: pass},
	} {
		var out []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out = append(out, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
		}
		var logs bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
			l := slog.New(h)
			l.Info("config", "cfg", cfg, "ptr", &cfg, "any", slog.AnyValue(cfg))
			l.Info("fields", "password", cfg.Password, "url", cfg.URL)
		}
		out = append(out, logs.String())
		j, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(j), string(y))
		for _, s := range out {
			if strings.Contains(s, pass) || strings.Contains(s, urlPass) {
				t.Errorf("a secret is shown in %s", s)
			}
		}
		if !strings.Contains(string(y), "xxxxx") {
			t.Errorf("YAML of the config %s does not mark the password as set", y)
		}
		if cfg.Password.Reveal() != pass {
			t.Errorf("Reveal = %q, want the password", cfg.Password.Reveal())
		}
	}
}
