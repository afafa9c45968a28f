package bus

import (
	"errors"
	"fmt"

	"github.com/busline/busline/middleware"
)

var (
	// ErrClosed is returned by Publish, Subscribe and Run once Close started.
	ErrClosed = errors.New("bus: closed")

	// ErrDuplicateHandler is returned by Subscribe when the group already has
	// a handler for the event: one group handles one event once.
	ErrDuplicateHandler = errors.New("bus: duplicate handler")

	// ErrRunning is returned by Run when the bus is already running.
	ErrRunning = errors.New("bus: already running")

	// ErrDelayUnsupported is returned by Publish with WithDelay or
	// WithDeliverAt when the transport cannot keep a message until it is
	// due (it is no transports.Delayer), or the delay exceeds the
	// transport's Features().MaxDelay.
	ErrDelayUnsupported = errors.New("bus: scheduled publish not supported by the transport")

	// ErrUnknownGroup is returned by PoisonLane's operations when the
	// transport reports that the group has no poison lane on the topic.
	ErrUnknownGroup = errors.New("no such consumer group")
)

// PermanentError marks a failure that retrying cannot fix. See Permanent.
type PermanentError = middleware.PermanentError

// Permanent marks err as permanent: the message skips every retry and
// delayed redelivery and goes straight to the poison lane. Permanent(nil) is
// nil.
func Permanent(err error) error { return middleware.Permanent(err) }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent. A DecodeError is always wrapped so.
func IsPermanent(err error) bool { return middleware.IsPermanent(err) }

// DecodeError is the failure of a message whose payload could not be decoded
// into the handler's event type. The handler is not called; the failure is
// permanent, recorded with reason "decode".
type DecodeError struct {
	Event string // the event name the handler expects
	Err   error  // the codec's error
}

// Error describes the decode failure.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s: %v", e.Event, e.Err)
}

// Unwrap returns the codec's error.
func (e *DecodeError) Unwrap() error { return e.Err }
