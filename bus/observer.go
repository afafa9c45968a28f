package bus

import (
	"context"
	"path"
	"reflect"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/wire"
)

// Observer is told what the bus does, for instrumentation: package otelbus
// implements it with OpenTelemetry traces and metrics. Config.Observer nil
// (the default) observes nothing and costs nothing. Its methods are called
// from every publishing goroutine and every worker, so they must be safe for
// concurrent use, and fast: they run on the hot path.
type Observer interface {
	// Publishing is called before msgs are sent by Publish or PublishBatch
	// (one call per topic of a batch), with the caller's context. It may add
	// metadata to the messages (trace context). done is called with the
	// outcome once the transport has them, or failed.
	Publishing(ctx context.Context, p Publication, msgs []*message.Message) (done func(error))

	// Handling is called before each attempt at handling msg, with the
	// attempt's context (AttemptInfo tells its number and whether it is the
	// first of this delivery). The context it returns is the handler's; done
	// is called with the attempt's outcome as soon as the attempt returned.
	Handling(ctx context.Context, d Delivery, msg *message.Message) (context.Context, func(error))

	// Diverted is called once msg, which failed in every attempt of this
	// delivery, was written to lane (the group's retry lane when f.Tier is
	// above 0, its poison lane when f.Tier is 0), with the failure record it
	// carries there, before the original is acked. ctx is the context
	// Handling returned for the attempt that failed last.
	Diverted(ctx context.Context, d Delivery, msg *message.Message, lane string, f wire.Failure)
}

// Publication names where Publish sends messages.
type Publication struct {
	Topic     string        // the topic the messages are sent to
	Delay     time.Duration // zero unless the publish is scheduled
	Transport string        // the transport's kind, see Bus.TransportKind
}

// Delivery names where a message being handled came from.
type Delivery struct {
	Event     string // the event name
	Group     string // the consumer group
	Topic     string // the topic consumed: the event's, or the group's retry lane
	Transport string // the transport's kind, see Bus.TransportKind
}

// TransportKind names the bus's transport for instrumentation and health:
// "memory", "rabbitmq", "redis" or "kafka" for busline's own transports
// (the last element of the Go package that defines the transport's type,
// which for them is the kind they register under), or the result of the
// transport's Kind method where it has one.
func (b *Bus) TransportKind() string { return b.kind }

// transportKind computes Bus.TransportKind for t.
func transportKind(t any) string {
	if k, ok := t.(interface{ Kind() string }); ok {
		return k.Kind()
	}
	typ := reflect.TypeOf(t)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if p := typ.PkgPath(); p != "" {
		return path.Base(p)
	}
	return typ.String()
}

// AttemptInfo describes the attempt whose context Observer.Handling was
// given: its number, counting the failures recorded in the message before
// it (middleware.Attempt), and whether it is the first attempt of this
// delivery, that is the first since the transport handed the message over
// (immediate retries are not). ok is false for any other context.
func AttemptInfo(ctx context.Context) (n int, first bool, ok bool) {
	st, ok := ctx.Value(observedKey{}).(*observed)
	if !ok {
		return 0, false, false
	}
	return attemptFrom(ctx, 1), st.attempts == 1, true
}

type observedKey struct{}

// observed is the context of one delivery under observation: it carries
// what the attempts tell Diverted. One is allocated per delivery, and only
// with an Observer.
type observed struct {
	context.Context
	attempts int             // attempts so far in this delivery
	last     context.Context // the context Handling returned for the latest attempt
}

func (o *observed) Value(key any) any {
	if key == (observedKey{}) {
		return o
	}
	return o.Context.Value(key)
}

// observe returns the middlewares that report a delivery to o: attempt goes
// inside the Retry middleware and reports each attempt; delivery goes around
// the Lanes middleware, so that Diverted (see diverted) gets the context of
// the attempt that failed last.
func observe(o Observer, d Delivery) (delivery, attempt message.HandlerMiddleware) {
	delivery = func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			orig := msg.Context()
			msg.SetContext(&observed{Context: orig})
			out, err := h(msg)
			msg.SetContext(orig)
			return out, err
		}
	}
	attempt = func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			st, _ := msg.Context().Value(observedKey{}).(*observed)
			if st != nil {
				st.attempts++
			}
			ctx, done := o.Handling(msg.Context(), d, msg)
			if st != nil {
				st.last = ctx
			}
			msg.SetContext(ctx)
			out, err := h(msg)
			done(err)
			return out, err
		}
	}
	return delivery, attempt
}

// diverted returns the Lanes.Diverted hook that reports to o.
func diverted(o Observer, d Delivery) func(*message.Message, string, wire.Failure) {
	return func(msg *message.Message, lane string, f wire.Failure) {
		ctx := msg.Context()
		if st, ok := ctx.Value(observedKey{}).(*observed); ok && st.last != nil {
			ctx = st.last
		}
		o.Diverted(ctx, d, msg, lane, f)
	}
}
