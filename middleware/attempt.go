package middleware

import (
	"context"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/wire"
)

type attemptKey struct{}

// Attempt returns the attempt number of the message handled under ctx: 1
// for the first, counting every earlier failure recorded in the message's
// metadata. ok is false outside the Retry middleware.
func Attempt(ctx context.Context) (n int, ok bool) {
	n, ok = ctx.Value(attemptKey{}).(int)
	return n, ok
}

func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// failedAttempts returns the failed attempts recorded in msg's metadata.
func failedAttempts(msg *message.Message) int {
	n, err := strconv.Atoi(msg.Metadata.Get(wire.MetaAttempts))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
