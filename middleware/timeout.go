package middleware

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Timeout bounds each call of the handler it wraps: the message's context is
// cancelled after d. Placed inside Retry, it bounds each attempt. d <= 0
// means no bound.
func Timeout(d time.Duration) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if d <= 0 {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			orig := msg.Context()
			ctx, cancel := context.WithTimeout(orig, d)
			defer cancel()
			msg.SetContext(ctx)
			defer msg.SetContext(orig)
			return h(msg)
		}
	}
}
