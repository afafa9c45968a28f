package bustest

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/wire"
)

// Message is an event the harness saw, decoded into its Go type, with the
// metadata a handler of it reads through bus.MetadataFrom.
type Message[T bus.Event] struct {
	Event T

	// Metadata is the message's metadata, as its handler sees it. For a
	// published event, Group is empty and Attempt is 1; for a handled one,
	// they are the group's and the attempt's; for a lane move, Attempt is
	// the attempt that failed last, and Raw holds the failure record.
	Metadata bus.Metadata

	// Failure is the failure record the pipeline wrote when it moved the
	// message to a lane (WaitRetrying, WaitPoisoned); zero otherwise.
	Failure wire.Failure
}

// WaitHandled waits until group's handler of T has handled n events of T
// successfully (returned nil), counting every success, redeliveries
// included, and returns the first n in the order they were handled. It
// fails the test after the harness's timeout (WithTimeout) with what was
// seen meanwhile.
func WaitHandled[T bus.Event](t TB, h *Harness, group string, n int) []Message[T] {
	t.Helper()
	return wait[T](t, h, handled, group, n, "WaitHandled", fmt.Sprintf("handled by group %s", group))
}

// Handled returns the events of T that group's handler has handled
// successfully so far, in the order they were handled, without waiting.
func Handled[T bus.Event](h *Harness, group string) []Message[T] {
	return collect[T](h, handled, group)
}

// WaitPublished waits until n events of T have been published through the
// harness's bus (bus.Publish or bus.PublishBatch, by the test or by
// handlers) and returns the first n in publish order. A scheduled publish
// counts when the transport took it, before it is due. It fails the test
// after the harness's timeout with what was seen.
func WaitPublished[T bus.Event](t TB, h *Harness, n int) []Message[T] {
	t.Helper()
	return wait[T](t, h, published, "", n, "WaitPublished", "published")
}

// Published returns the events of T published through the harness's bus so
// far, in publish order, without waiting. An event published from a
// handler carries the handled message's id as Metadata.CausationID.
func Published[T bus.Event](h *Harness) []Message[T] {
	return collect[T](h, published, "")
}

// WaitRetrying waits until group's handler of T has failed n times for good
// in a delivery, so that the message moved to the group's retry lane for a
// delayed redelivery, and returns those moves with their failure records
// (Message.Failure.Tier, .Error). The message then waits in the transport's
// timer heap: with WithClock, Advance past its tier's delay delivers it.
func WaitRetrying[T bus.Event](t TB, h *Harness, group string, n int) []Message[T] {
	t.Helper()
	return wait[T](t, h, retrying, group, n, "WaitRetrying", fmt.Sprintf("moved to the retry lane of group %s", group))
}

// WaitPoisoned waits until n events of T have been moved to group's poison
// lane, after the last delay tier or at once for a permanent failure, and
// returns them with their failure records (Message.Failure.Reason, .Error).
func WaitPoisoned[T bus.Event](t TB, h *Harness, group string, n int) []Message[T] {
	t.Helper()
	return wait[T](t, h, poisoned, group, n, "WaitPoisoned", fmt.Sprintf("moved to the poison lane of group %s", group))
}

// wait waits until collect finds n records of kind k, then returns the
// first n.
func wait[T bus.Event](t TB, h *Harness, k kind, group string, n int, fn, what string) []Message[T] {
	t.Helper()
	name := eventName[T]()
	deadline := time.NewTimer(h.timeout)
	defer deadline.Stop()
	for timedOut := false; ; {
		recs, changed := h.rec.snapshot()
		got, errs := decode[T](h, recs, k, group, name)
		if len(got) >= n {
			return got[:n]
		}
		if !timedOut {
			select {
			case <-changed:
			case <-deadline.C:
				timedOut = true // one last look
			}
			continue
		}
		t.Fatalf("bustest.%s[%s]: after %v, %d of the %d %s events waited for were %s%s\n%s",
			fn, typeName[T](), h.timeout, len(got), n, name, what, decodeErrors(errs), seen(recs))
		return nil
	}
}

// collect returns the records of kind k of T's event (and group, unless
// empty) decoded.
func collect[T bus.Event](h *Harness, k kind, group string) []Message[T] {
	recs, _ := h.rec.snapshot()
	got, _ := decode[T](h, recs, k, group, eventName[T]())
	return got
}

// decode returns the records of kind k, event name and group (any group
// when empty), decoded into T, and the errors of those that do not decode.
func decode[T bus.Event](h *Harness, recs []record, k kind, group, name string) ([]Message[T], []error) {
	var out []Message[T]
	var errs []error
	for _, rec := range recs {
		if rec.kind != k || rec.event != name || group != "" && rec.group != group {
			continue
		}
		e := newEvent[T]()
		if err := h.codec.Unmarshal(rec.payload, &e); err != nil {
			errs = append(errs, fmt.Errorf("message %s: %w", rec.id, err))
			continue
		}
		out = append(out, Message[T]{Event: e, Metadata: rec.metadata(), Failure: rec.failure})
	}
	return out, errs
}

// maxSeen bounds the records a failure message lists.
const maxSeen = 30

// seen lists recs for a failure message, the latest maxSeen of them.
func seen(recs []record) string {
	if len(recs) == 0 {
		return "seen: nothing (no publish, no handler attempt)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seen (%d):", len(recs))
	if len(recs) > maxSeen {
		fmt.Fprintf(&b, " (the first %d left out)", len(recs)-maxSeen)
		recs = recs[len(recs)-maxSeen:]
	}
	for _, rec := range recs {
		b.WriteString("\n\t")
		b.WriteString(rec.String())
	}
	return b.String()
}

func decodeErrors(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; %d did not decode:", len(errs))
	for _, err := range errs {
		b.WriteString("\n\t")
		b.WriteString(err.Error())
	}
	return b.String()
}

// eventName returns T's wire name, calling EventName on a zero T (a new
// element when T is a pointer type), as bus.Subscribe does.
func eventName[T bus.Event]() string { return newEvent[T]().EventName() }

// newEvent returns a zero T, or a pointer to a zero element when T is a
// pointer type, ready to be decoded into.
func newEvent[T bus.Event]() T {
	var zero T
	if t := reflect.TypeFor[T](); t.Kind() == reflect.Pointer {
		return reflect.New(t.Elem()).Interface().(T)
	}
	return zero
}

func typeName[T any]() string { return reflect.TypeFor[T]().String() }
