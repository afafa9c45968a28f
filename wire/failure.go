package wire

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Failure is the failure record the pipeline keeps in a message's busline_
// metadata while it travels the retry lanes and once it is in the poison
// lane.
type Failure struct {
	Reason       string    // MetaReason: one of the Reason constants
	Error        string    // MetaError: the last error's text
	ErrorType    string    // MetaErrorType: the last error's Go type
	Attempts     int       // MetaAttempts: failed attempts so far
	Group        string    // MetaGroup: the failing consumer group
	Topic        string    // MetaTopic: the topic first consumed from
	Handler      string    // MetaHandler: the failing handler's name
	Position     string    // MetaPosition: transport position, if known
	Tier         int       // MetaTier: the retry lane tier; 0 outside them
	Due          time.Time // MetaDue: when a retry-lane message is due
	FirstFailure time.Time // MetaFirstFailure
	LastFailure  time.Time // MetaLastFailure
	Replays      int       // MetaReplays: replays from the poison lane
}

// ReadFailure decodes the failure record in md. Absent keys leave their
// field zero; malformed values are reported together in the error, and the
// fields that did decode are returned anyway.
func ReadFailure(md message.Metadata) (Failure, error) {
	var errs []error
	f := Failure{
		Reason:    md.Get(MetaReason),
		Error:     md.Get(MetaError),
		ErrorType: md.Get(MetaErrorType),
		Group:     md.Get(MetaGroup),
		Topic:     md.Get(MetaTopic),
		Handler:   md.Get(MetaHandler),
		Position:  md.Get(MetaPosition),
	}
	readInt := func(key string, into *int) {
		if v := md.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a count", key, v))
				return
			}
			*into = n
		}
	}
	readTime := func(key string, into *time.Time) {
		if v := md.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not an RFC 3339 time", key, v))
				return
			}
			*into = t
		}
	}
	readInt(MetaAttempts, &f.Attempts)
	readInt(MetaTier, &f.Tier)
	readInt(MetaReplays, &f.Replays)
	readTime(MetaDue, &f.Due)
	readTime(MetaFirstFailure, &f.FirstFailure)
	readTime(MetaLastFailure, &f.LastFailure)
	return f, errors.Join(errs...)
}

// The bounds of a failure record, so that one always fits on a message
// busline published: Write cuts longer texts, and bus.Publish refuses an
// event that would leave less than FailureReserve bytes under the
// transport's size limit.
const (
	// MaxErrorText bounds Failure.Error.
	MaxErrorText = 1024
	// maxText bounds Failure.ErrorType, Handler and Position.
	maxText = 256
	// FailureReserve is the most a failure record adds to a message,
	// counted as transports.MessageSize counts it: its keys, its bounded
	// texts, group and topic names (at most 200 bytes each), counts and
	// times.
	FailureReserve = 3072
)

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…(cut)"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Write stores f in md: non-zero fields are set, zero ones removed. The
// error text is cut to MaxErrorText bytes, the error type, handler and
// position to 256, so that the record stays within FailureReserve.
func (f Failure) Write(md message.Metadata) {
	set := func(key, v string) {
		if v == "" {
			delete(md, key)
		} else {
			md.Set(key, v)
		}
	}
	setInt := func(key string, n int) {
		if n == 0 {
			delete(md, key)
		} else {
			md.Set(key, strconv.Itoa(n))
		}
	}
	setTime := func(key string, t time.Time) {
		if t.IsZero() {
			delete(md, key)
		} else {
			md.Set(key, FormatTime(t))
		}
	}
	set(MetaReason, clip(f.Reason, maxText))
	set(MetaError, clip(f.Error, MaxErrorText))
	set(MetaErrorType, clip(f.ErrorType, maxText))
	set(MetaGroup, clip(f.Group, maxText))
	set(MetaTopic, clip(f.Topic, maxText))
	set(MetaHandler, clip(f.Handler, maxText))
	set(MetaPosition, clip(f.Position, maxText))
	setInt(MetaAttempts, f.Attempts)
	setInt(MetaTier, f.Tier)
	setInt(MetaReplays, f.Replays)
	setTime(MetaDue, f.Due)
	setTime(MetaFirstFailure, f.FirstFailure)
	setTime(MetaLastFailure, f.LastFailure)
}

// FormatTime formats t as busline writes times on the wire: RFC 3339 with
// nanoseconds, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
