// Package bustest helps application authors test their busline handlers,
// the way River's rivertest does for workers: a real bus on the memory
// transport inside a test, typed waits on what it did, a fake clock for
// delayed redelivery, and handler contexts for unit tests without a bus.
//
// A test starts a harness, runs the application's own registration code on
// its bus, publishes, and waits:
//
//	h := bustest.New(t)
//	if err := app.Register(h.Bus()); err != nil { // the real bus.Subscribe calls
//		t.Fatal(err)
//	}
//	bus.Publish(ctx, h.Bus(), OrderPlaced{OrderID: "A-1"})
//	charged := bustest.WaitPublished[PaymentCharged](t, h, 1)
//
// The harness closes the bus and the transport when the test ends, and
// leaves no goroutine behind (goleak.VerifyTestMain passes).
//
// # Waits
//
// WaitHandled, WaitPublished, WaitRetrying and WaitPoisoned block until the
// harness has seen n events of a type handled by a group, published, moved
// to a group's retry lane or to its poison lane, and return them decoded,
// with their metadata and, for lane moves, their failure records. They wait
// on channels, never by sleeping, up to the harness's timeout (WithTimeout,
// DefaultTimeout by default), and then fail the test with everything the
// harness saw: each publish, each handler attempt with its error, each lane
// move. Handled and Published return the same without waiting.
//
// The harness sees what the bus does through a bus.Observer; an Observer in
// the configuration passed with WithConfig is still called.
//
// # Time
//
// A Clock passed with WithClock drives the memory transport's timer heap,
// which keeps delayed redeliveries and scheduled publishes (bus.WithDelay).
// Time stands still until Advance moves it; Advance returns once the due
// messages are in their queues, so a test of a 10-minute tier takes
// milliseconds:
//
//	bustest.WaitRetrying[OrderPlaced](t, h, "billing", 1)
//	h.Advance(10 * time.Second) // the first tier
//	bustest.WaitHandled[OrderPlaced](t, h, "billing", 1)
//
// Only the transport follows the clock. Immediate retries (Config.Retry)
// still wait their real backoff: set RetryPolicy{Attempts: 1} to send a
// failure straight to the first tier. The times in failure records (Due,
// FirstFailure) are the wall clock's.
//
// # Handlers without a bus
//
// Context returns a context carrying bus.Metadata, so that a handler that
// reads bus.MetadataFrom can be called directly in a unit test.
package bustest
