package rabbitmq

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// userinfo matches the user:password@ part of a URL that net/url cannot
// parse, so that redactURL still hides the password.
var userinfo = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@]*@`)

// redactURL returns raw with its password replaced by "xxxxx", whether or
// not raw parses as a URL.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return userinfo.ReplaceAllString(raw, "${1}:xxxxx@")
}

// secrets returns the strings of rawURL that must never be printed: the
// password, raw and percent-decoded, and the whole URL.
func secrets(rawURL string) []string {
	var s []string
	if u, err := url.Parse(rawURL); err == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = append(s, p)
			if esc := url.UserPassword("", p).String(); esc != "" {
				s = append(s, strings.TrimPrefix(esc, ":"))
			}
		}
	} else if m := userinfo.FindStringSubmatch(rawURL); m != nil {
		pass := strings.TrimPrefix(rawURL[len(m[1]):strings.Index(rawURL, "@")], ":")
		if pass != "" {
			s = append(s, pass)
		}
	}
	if rawURL != "" {
		s = append(s, rawURL)
	}
	return s
}

// redactedError is an error whose text had the connection secrets removed.
// It unwraps to the original error only when that error's own text is free
// of them, so that no caller can print a password by unwrapping.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err with every secret of rawURL removed from its text.
func redactError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := true
	// Longest first, so that the whole URL is replaced before its password.
	ss := secrets(rawURL)
	for i := len(ss) - 1; i >= 0; i-- {
		s := ss[i]
		if strings.Contains(msg, s) {
			clean = false
			repl := "xxxxx"
			if s == rawURL {
				repl = redactURL(rawURL)
			}
			msg = strings.ReplaceAll(msg, s, repl)
		}
	}
	if clean {
		return err
	}
	var inner error
	if u := errors.Unwrap(err); u != nil {
		if r := redactError(u, rawURL); r == u {
			inner = u
		} else {
			inner = r
		}
	}
	return &redactedError{msg: msg, err: inner}
}
