package kafka

import "strings"

// redactedError hides secrets that a client library may have put in an
// error's text, while errors.Is and errors.As still see the original.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	s := e.err.Error()
	for _, secret := range e.secrets {
		s = strings.ReplaceAll(s, secret, "xxxxx")
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with the transport's secrets hidden from its text; nil
// stays nil.
func (t *Transport) redact(err error) error {
	if err == nil || len(t.secrets) == 0 {
		return err
	}
	if _, done := err.(*redactedError); done {
		return err
	}
	return &redactedError{err: err, secrets: t.secrets}
}
