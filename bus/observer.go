package bus

import (
	"context"
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
	// Publishing is called before msgs are sent to topic by Publish (delay
	// is zero unless the publish is scheduled), with Publish's context. It
	// may add metadata to the messages (trace context). done is called with
	// the outcome once the transport has them, or failed.
	Publishing(ctx context.Context, topic string, delay time.Duration, msgs []*message.Message) (done func(error))

	// Handling is called before each attempt at handling msg, with the
	// attempt's context (Attempt(ctx) is its number). The context it
	// returns is the handler's; done is called with the attempt's outcome.
	Handling(ctx context.Context, d Delivery, msg *message.Message) (context.Context, func(error))

	// Diverted is called once msg, which failed in every attempt, was
	// written to lane (a retry lane, or the poison lane when f.Tier is 0),
	// with the failure record it carries there.
	Diverted(ctx context.Context, d Delivery, msg *message.Message, lane string, f wire.Failure)
}

// Delivery names where a message being handled came from.
type Delivery struct {
	Event string // the event name
	Group string // the consumer group
	Topic string // the topic consumed: the event's, or the group's retry lane
}

// observe returns the middleware that reports each attempt to o.
func observe(o Observer, d Delivery) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx, done := o.Handling(msg.Context(), d, msg)
			msg.SetContext(ctx)
			out, err := h(msg)
			done(err)
			return out, err
		}
	}
}
