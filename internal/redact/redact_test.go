package redact_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/busline/busline/internal/redact"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"amqp://guest:s3cret@localhost:5672/": "amqp://guest:xxxxx@localhost:5672/",
		"redis://:p%40ss@h:6379/0":            "redis://:xxxxx@h:6379/0",
		"amqp://user:pa ss@host:5672/%zz":     "amqp://user:xxxxx@host:5672/%zz", // does not parse
		"amqp://localhost:5672/":              "amqp://localhost:5672/",
	} {
		if got := redact.URL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	url := "amqp://guest:p%40ss@localhost:5672/"
	secrets := append(redact.URLSecrets(url), url)
	inner := &fs.PathError{Op: "dial", Path: "localhost", Err: errors.New("refused")}
	leaky := fmt.Errorf("connect to %s with p@ss: %w", url, fmt.Errorf("auth p%%40ss failed: %w", inner))
	err := redact.Error(leaky, secrets...)
	for e := err; e != nil; e = errors.Unwrap(e) {
		if msg := e.Error(); strings.Contains(msg, "p@ss") || strings.Contains(msg, "p%40ss") {
			t.Fatalf("a secret survives in the chain: %q", msg)
		}
	}
	if !strings.Contains(err.Error(), "amqp://guest:xxxxx@localhost:5672/") {
		t.Errorf("the URL is not shown redacted: %q", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe != inner {
		t.Error("errors.As no longer reaches the clean inner error")
	}
	clean := errors.New("timeout")
	if redact.Error(clean, secrets...) != clean || redact.Error(nil, secrets...) != nil {
		t.Error("a clean error or nil is not returned as is")
	}
}
