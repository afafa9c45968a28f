package redis

import (
	"errors"
	"fmt"
	"time"

	"github.com/busline/busline/transports"
)

// ErrClosed is returned when publishing or subscribing through a closed
// transport, publisher or subscriber.
var ErrClosed = errors.New("redis transport: closed")

// GroupLostError is what Health reports after a consumer group vanished
// (Redis restarted without persistence, stream deleted, FLUSHALL) and was
// recreated. Entries that were in the lost data are gone for the group.
type GroupLostError struct {
	Stream string    // the stream key
	Group  string    // the consumer group
	At     time.Time // when the loss was detected
	Err    error     // the error that revealed it (NOGROUP)
}

// Error says what was lost and how to prevent it.
func (e *GroupLostError) Error() string {
	return fmt.Sprintf("redis transport: consumer group %s on stream %s was lost at %s and recreated (%v): entries published before the loss and not yet handled are gone; enable persistence (appendonly yes) to prevent this",
		e.Group, e.Stream, e.At.Format(time.RFC3339), e.Err)
}

// Unwrap returns the error that revealed the loss.
func (e *GroupLostError) Unwrap() error { return e.Err }

// MalformedEntryError says why an entry could not be read as a message. It
// is the error recorded with the entry on the poison lane.
type MalformedEntryError struct {
	ID     string // the stream entry id
	Reason string
}

// Error names the entry and why it could not be read.
func (e *MalformedEntryError) Error() string {
	return fmt.Sprintf("redis transport: malformed stream entry %s: %s", e.ID, e.Reason)
}

// redact returns err with every credential of the configuration removed
// from its text and from the texts of the errors it wraps.
func (t *Transport) redact(err error) error {
	return transports.RedactError(err, t.secrets...)
}
