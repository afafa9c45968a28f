package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/memory"
	"github.com/busline/busline/wire"
)

// Retry on a plain Watermill router, over the memory transport's
// publisher and subscriber: the handler fails twice and succeeds on its
// third attempt, which it reads with Attempt.
func ExampleRetry() {
	transport := memory.New(memory.Config{})
	defer transport.Close()
	pub, _ := transport.Publisher()
	sub, _ := transport.Subscriber("billing")

	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	router.AddMiddleware(
		middleware.Retry(middleware.RetryPolicy{Attempts: 3, Backoff: middleware.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}}),
		middleware.Recoverer,
	)
	done := make(chan struct{})
	router.AddConsumerHandler("billing", "orders", sub, func(msg *message.Message) error {
		n, _ := middleware.Attempt(msg.Context())
		if n < 3 {
			fmt.Println("attempt", n, "failed")
			return errors.New("ledger busy")
		}
		fmt.Println("attempt", n, "handled", string(msg.Payload))
		close(done)
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()

	if err := pub.Publish("orders", message.NewMessage("m-1", []byte("A-1"))); err != nil {
		panic(err)
	}
	<-done
	_ = router.Close()
	// Output:
	// attempt 1 failed
	// attempt 2 failed
	// attempt 3 handled A-1
}

// The whole failure pipeline on a plain handler, as package bus composes
// it: a message that still fails after its immediate attempts moves to the
// group's retry lane for its first tier, and the original is acked.
func ExampleLanes() {
	transport := memory.New(memory.Config{})
	defer transport.Close()
	pub, _ := transport.Publisher()
	retryLane := wire.RetryTopic("orders", "billing")
	_ = transport.ProvisionGroup(context.Background(), retryLane, "billing")

	lanes := middleware.Lanes{
		Publisher: pub,
		Topic:     "orders",
		Group:     "billing",
		Delays:    []time.Duration{10 * time.Second, time.Minute},
		Handler:   "billing-orders",
	}
	handler := lanes.Middleware(middleware.Retry(middleware.RetryPolicy{Attempts: 2, Backoff: middleware.Backoff{Initial: time.Millisecond}})(
		middleware.Recoverer(func(msg *message.Message) ([]*message.Message, error) {
			return nil, errors.New("tax service down")
		})))

	_, err := handler(message.NewMessage("m-1", []byte("A-1")))
	fmt.Println("handler error after the lane move:", err)

	// Without Lanes.Delay (a transports.Delayer), the message is in the
	// retry lane at once, with its due time for the lane's consumer.
	sub, _ := transport.Subscriber("billing")
	defer sub.Close()
	msgs, _ := sub.Subscribe(context.Background(), retryLane)
	moved := <-msgs
	moved.Ack()
	f, _ := wire.ReadFailure(moved.Metadata)
	fmt.Printf("%s: tier %d, %d attempts, %s %q, handler %s, due in %v\n",
		retryLane, f.Tier, f.Attempts, f.Reason, f.Error, f.Handler, f.Due.Sub(f.LastFailure))
	// Output:
	// handler error after the lane move: <nil>
	// orders.billing.retry: tier 1, 2 attempts, error "tax service down", handler billing-orders, due in 10s
}

// Recoverer turns a panic into a *PanicError with the stack.
func ExampleRecoverer() {
	handler := middleware.Recoverer(func(msg *message.Message) ([]*message.Message, error) {
		var m map[string]int
		//lint:ignore SA5000 the handler panics on purpose: that is what the example shows
		m["boom"]++ // nil map
		return nil, nil
	})
	_, err := handler(message.NewMessage("m-1", nil))
	var pe *middleware.PanicError
	fmt.Println(errors.As(err, &pe), pe.Value, middleware.Reason(err))
	// Output:
	// true assignment to entry in nil map panic
}

// Timeout bounds each attempt; the handler sees its context's deadline.
func ExampleTimeout() {
	handler := middleware.Timeout(10 * time.Millisecond)(func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done()
		return nil, msg.Context().Err()
	})
	_, err := handler(message.NewMessage("m-1", nil))
	fmt.Println(err, middleware.Reason(err))
	// Output:
	// context deadline exceeded timeout
}

// Permanent errors are never retried.
func ExamplePermanent() {
	calls := 0
	handler := middleware.Retry(middleware.RetryPolicy{Attempts: 5})(func(msg *message.Message) ([]*message.Message, error) {
		calls++
		return nil, middleware.Permanent(errors.New("unknown currency"))
	})
	_, err := handler(message.NewMessage("m-1", nil))
	fmt.Println(calls, err, middleware.IsPermanent(err), middleware.Reason(err))
	// Output:
	// 1 permanent: unknown currency true permanent
}

// WaitDue is how long the consumer of a retry lane waits for a message on a
// transport that cannot delay: until its due time, capped at its tier's
// delay, so a far-future due time cannot hold the lane.
func ExampleWaitDue() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	delays := []time.Duration{10 * time.Second, time.Minute}
	md := message.Metadata{}
	wire.Failure{Tier: 1, Due: now.Add(4 * time.Second)}.Write(md)
	fmt.Println(middleware.WaitDue(md, delays, now))
	wire.Failure{Tier: 1, Due: now.Add(24 * time.Hour)}.Write(md)
	fmt.Println(middleware.WaitDue(md, delays, now))
	fmt.Println(middleware.WaitDue(message.Metadata{}, delays, now))
	// Output:
	// 4s
	// 10s
	// 0s
}
