package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/config"
)

// seedEnv is the environment the seed files and the fuzzer parse with.
var seedEnv = env(map[string]string{
	"SERVICE":  "billing",
	"ATTEMPTS": "4",
	"SECRET":   "hunter2",
	"EMPTY":    "",
})

// seeds returns the seed files, by name.
func seeds(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz-seeds", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no seed files in testdata/fuzz-seeds (%v)", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = data
	}
	return out
}

func TestSeedFiles(t *testing.T) {
	t.Parallel()
	for name, data := range seeds(t) {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(data, name, seedEnv)
			switch {
			case strings.HasPrefix(name, "valid-"):
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if err := cfg.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			case strings.HasPrefix(name, "invalid-"):
				if err == nil {
					t.Fatalf("Parse succeeded, want an error")
				}
				checkError(t, err, data)
			default:
				t.Fatalf("seed file %s is named neither valid-* nor invalid-*", name)
			}
		})
	}
}

// checkError asserts err, from parsing data, is an *Error with problems that
// all have a message, and that do not print the secret of seedEnv unless data
// itself holds it.
func checkError(t *testing.T, err error, data []byte) {
	t.Helper()
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	if len(e.Problems) == 0 {
		t.Fatalf("*config.Error without problems")
	}
	for _, p := range e.Problems {
		if p.Message == "" {
			t.Errorf("problem without a message: %+v", p)
		}
	}
	if strings.Contains(err.Error(), "hunter2") && !bytes.Contains(data, []byte("hunter2")) {
		t.Errorf("error prints a value from the environment: %v", err)
	}
}

// fuzzTransport is decoded from the transport section of fuzzed configs.
type fuzzTransport struct {
	URL     string            `yaml:"url"`
	Timeout time.Duration     `yaml:"timeout"`
	Nested  struct{ N int }   `yaml:"nested"`
	List    []float64         `yaml:"list"`
	Map     map[string]bool   `yaml:"map"`
	Ptr     *struct{ S bool } `yaml:"ptr"`
	Any     any               `yaml:"any"`
}

func FuzzParse(f *testing.F) {
	for _, data := range seeds(f) {
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"service: s\n",
		"service: ${SECRET}\n",
		"service: s\nsubscriptions: {g: {concurrency: ${SECRET}}}\n",
		"service: s\ntransport: {kind: x, x: {url: u, timeout: 1s, nested: {n: 1}, list: [1, 2.5], map: {a: true}, ptr: {s: true}, any: [1]}}\n",
		"service: s # ${NOPE}\nretry: {delays: []}\n",
		"a: &a [*a]\n",
		"service: s\n<<: {shutdown_grace: 1s}\n",
		"service: \"${SERVICE}\\\"#${NOPE}\"\n",
		"key: |\n  ${SECRET}\n# ${NOPE}\n",
		"service: s\r\nretry:\r\n  attempts: 2\r\n",
		"\uFEFFservice: s\n",
		"service: s\n---\nservice: t\n",
		"service: $$ ${EMPTY:-x} ${\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "fuzz.yaml", seedEnv)
		if err != nil {
			if cfg != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			checkError(t, err, data)
			return
		}
		if cfg.Service == "" {
			t.Errorf("Parse succeeded with an empty Service")
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate of a parsed Config: %v", err)
		}
		for group := range cfg.Subscriptions {
			_ = cfg.RetryFor(group)
			_ = cfg.SubscriptionFor(group)
		}
		var tr fuzzTransport
		if err := cfg.Transport.Decode(&tr); err != nil {
			checkError(t, err, data)
		}
	})
}
