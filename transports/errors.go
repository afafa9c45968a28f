package transports

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrMaybeSent marks a publish error after which the broker may still have
// the message and deliver it: the request was written, or may have been, but
// no confirmation came before the context ended or the connection broke.
// Republishing under the same id (bus.WithID) is then safe for consumers
// that deduplicate on it.
//
// A Publish or PublishDelayed error that does not wrap ErrMaybeSent means
// none of the call's messages were stored: the call was refused before
// anything was sent (a closed transport, an oversized message, a context
// already done, no connection) or the broker refused it.
var ErrMaybeSent = errors.New("the broker may have stored the message")

// MaybeSent wraps err, when it is not nil, so that it also wraps
// [ErrMaybeSent], and says so in its text.
func MaybeSent(err error) error {
	if err == nil || errors.Is(err, ErrMaybeSent) {
		return err
	}
	return &maybeSentError{err: err}
}

type maybeSentError struct{ err error }

func (e *maybeSentError) Error() string {
	return e.err.Error() + " (the broker may have stored the message: republish it under the same id if consumers deduplicate)"
}

func (e *maybeSentError) Unwrap() []error { return []error{e.err, ErrMaybeSent} }

// ErrTooLarge is wrapped by [*MessageTooLargeError].
var ErrTooLarge = errors.New("message too large")

// MessageTooLargeError is returned by Publish and PublishDelayed for a
// message larger than the transport's limit ([Features].MaxMessageBytes).
// The call sends none of its messages, and no other call fails because of
// it.
type MessageTooLargeError struct {
	ID    string // the message's UUID
	Size  int    // its size, as MessageSize counts it
	Limit int    // the transport's limit
	Hint  string // how the limit is set, e.g. "transport.redis.max_message_bytes"
}

// Error names the message, its size and the limit.
func (e *MessageTooLargeError) Error() string {
	s := fmt.Sprintf("message %s is %d bytes, over the transport's limit of %d bytes: nothing sent", e.ID, e.Size, e.Limit)
	if e.Hint != "" {
		s += " (the limit is " + e.Hint + ")"
	}
	return s
}

// Unwrap returns ErrTooLarge.
func (e *MessageTooLargeError) Unwrap() error { return ErrTooLarge }

// MessageSize is the size a transport counts against its limit: the
// payload, plus every metadata key and value.
func MessageSize(msg *message.Message) int {
	n := len(msg.Payload)
	for k, v := range msg.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// CheckSize returns a *MessageTooLargeError for the first of msgs whose
// MessageSize is over limit, or nil. A limit of zero or less is no limit.
// Transports call it before they send anything.
func CheckSize(limit int, hint string, msgs ...*message.Message) error {
	if limit <= 0 {
		return nil
	}
	for _, m := range msgs {
		if n := MessageSize(m); n > limit {
			return &MessageTooLargeError{ID: m.UUID, Size: n, Limit: limit, Hint: hint}
		}
	}
	return nil
}
