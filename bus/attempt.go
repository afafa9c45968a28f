package bus

import (
	"context"

	"github.com/busline/busline/middleware"
)

// attemptFrom returns the attempt number the Retry middleware put in ctx,
// or fallback outside it.
func attemptFrom(ctx context.Context, fallback int) int {
	if n, ok := middleware.Attempt(ctx); ok {
		return n
	}
	return fallback
}
