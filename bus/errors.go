package bus

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by Publish, Subscribe and Run once Close started.
	ErrClosed = errors.New("bus: closed")

	// ErrDuplicateHandler is returned by Subscribe when the group already has
	// a handler for the event: one group handles one event once.
	ErrDuplicateHandler = errors.New("bus: duplicate handler")

	// ErrRunning is returned by Run when the bus is already running.
	ErrRunning = errors.New("bus: already running")
)

// PermanentError marks a failure that retrying cannot fix. See Permanent.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent: the message skips every retry and goes
// straight to the poison lane. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent or is a DecodeError.
func IsPermanent(err error) bool {
	var p *PermanentError
	var d *DecodeError
	return errors.As(err, &p) || errors.As(err, &d)
}

// DecodeError is the failure of a message whose payload could not be decoded
// into the handler's event type. The handler is not called; the failure is
// permanent.
type DecodeError struct {
	Event string // the event name the handler expects
	Err   error  // the codec's error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s: %v", e.Event, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }
