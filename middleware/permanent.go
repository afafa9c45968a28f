package middleware

import "errors"

// PermanentError marks a failure that retrying cannot fix: the message skips
// every retry and delayed redelivery and goes to the poison lane.
type PermanentError struct {
	Err    error
	Reason string // wire.MetaReason to record; empty means wire.ReasonPermanent
}

// Error returns the wrapped error's text marked as permanent.
func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err or an error it wraps is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
