package bus

import "context"

// attemptFrom returns the attempt number of the message handled under ctx.
func attemptFrom(_ context.Context, fallback int) int { return fallback }
