// Package middleware holds busline's failure pipeline as plain Watermill
// handler middleware, so each piece also works on its own with a Watermill
// router.
//
// Package bus composes them for every subscription, outermost first:
//
//		Lanes → Retry → Timeout → Recoverer → handler
//
//	  - Recoverer turns a panic into a *PanicError carrying the stack.
//	  - Timeout bounds each attempt.
//	  - Retry retries at once with exponential backoff and jitter; it never
//	    retries a Permanent error, nor a message whose context is done (the
//	    consumer is stopping: the message is left for redelivery).
//	  - Lanes moves a message that still fails to the group's retry lane
//	    (topic <topic>.<group>.retry) for its next tier, due after the tier's
//	    delay, and after the last tier or at once for a permanent failure to
//	    the group's poison lane (<topic>.<group>.poison). The original is
//	    acked only after the lane publish succeeded. With Lanes.Delay (a
//	    transports.Delayer) the broker keeps the message until it is due;
//	    without it, the lane's consumer waits for it (WaitDue).
//
// # Failure metadata
//
// The pipeline records a failure in the message's metadata under the
// busline_ prefix: the Meta constants in this package are the complete list,
// and Failure reads and writes them as one record.
//
// # Ordering
//
// Immediate retries keep order: the message is retried in place. A delayed
// redelivery lets the messages behind it overtake it, by design. A
// subscription that needs strict order uses no delayed tiers (bus.WithOrdered):
// its failures block the stream during the immediate retries, then go to the
// poison lane.
package middleware
