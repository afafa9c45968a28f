// Package redact removes secrets from URLs and error texts before busline
// prints or returns them.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// userinfo matches the user:password@ part of a URL that net/url cannot
// parse, so that URL still hides the password. The password runs to
// the last "@": an unescaped "/" or "@" in it is what made the URL fail to
// parse, and hiding too much is safer than printing the rest of it.
var userinfo = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):.*@`)

// URL returns raw with its password replaced by "xxxxx", whether or
// not raw parses as a URL.
func URL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return userinfo.ReplaceAllString(raw, "${1}:xxxxx@")
}

// URLSecrets returns what of rawURL must never be printed: its password, as
// written and percent-decoded. Empty for a URL without a password.
func URLSecrets(rawURL string) []string {
	var s []string
	if u, err := url.Parse(rawURL); err == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = append(s, p)
			if esc := strings.TrimPrefix(url.UserPassword("", p).String(), ":"); esc != p {
				s = append(s, esc)
			}
		}
	} else if m := userinfo.FindStringSubmatch(rawURL); m != nil {
		if pass := strings.TrimPrefix(rawURL[len(m[1]):strings.LastIndex(rawURL, "@")], ":"); pass != "" {
			s = append(s, pass)
		}
	}
	return s
}

// redactedError is an error whose text had secrets removed. It unwraps to
// the original error only where that error's own text is free of them, so
// that no caller can print a secret by unwrapping.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Error returns err with every secret removed from its text: a URL
// among secrets is replaced by its URL form, anything else by "xxxxx".
// Errors in err's chain whose text holds no secret stay reachable by
// errors.Is and errors.As; those that do are redacted in turn. RedactError
// returns err itself when its text holds no secret, and nil for nil.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	// Longest first, so that a whole URL is replaced before its password.
	ss := slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	slices.SortFunc(ss, func(a, b string) int { return len(b) - len(a) })
	msg := err.Error()
	clean := true
	for _, s := range ss {
		if strings.Contains(msg, s) {
			clean = false
			repl := "xxxxx"
			if strings.Contains(s, "://") {
				repl = URL(s)
			}
			msg = strings.ReplaceAll(msg, s, repl)
		}
	}
	if clean {
		return err
	}
	var inner error
	if u := errors.Unwrap(err); u != nil {
		inner = Error(u, ss...)
	}
	return &redactedError{msg: msg, err: inner}
}
