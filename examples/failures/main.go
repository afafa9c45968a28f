package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports/memory"
)

// PaymentRequested is the event.
type PaymentRequested struct {
	PaymentID string `json:"payment_id"`
	Amount    int    `json:"amount_cents"`
}

// EventName is the wire name.
func (PaymentRequested) EventName() string { return "payments.requested" }

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "failures:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx := context.Background()
	transport := memory.New(memory.Config{})
	defer transport.Close()

	b, err := bus.New(transport, bus.Config{
		Service: "payments-api",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Two quick attempts, then one delayed redelivery after 1s, then the
		// poison lane. Production tiers are longer (default 10s, 1m, 10m).
		Retry:  middleware.RetryPolicy{Attempts: 2, Backoff: middleware.Backoff{Initial: 50 * time.Millisecond}},
		Delays: []time.Duration{time.Second},
	})
	if err != nil {
		return err
	}

	lines := make(chan string, 16)
	var gatewayDown atomic.Bool // P-2's gateway is down until its first delayed redelivery
	gatewayDown.Store(true)
	var validationFixed atomic.Bool // P-3 is rejected until the "bug" is fixed
	start := time.Now()
	since := func() string { return fmt.Sprintf("%4dms", time.Since(start).Milliseconds()) }

	err = bus.Subscribe(b, "ledger", func(ctx context.Context, p PaymentRequested) error {
		md, _ := bus.MetadataFrom(ctx)
		switch {
		case p.PaymentID == "P-2" && md.Attempt <= 2:
			lines <- fmt.Sprintf("%s ledger: %s attempt %d failed: gateway timeout", since(), p.PaymentID, md.Attempt)
			return errors.New("gateway timeout")
		case p.PaymentID == "P-3" && !validationFixed.Load():
			lines <- fmt.Sprintf("%s ledger: %s rejected: currency missing (permanent, straight to the poison lane)", since(), p.PaymentID)
			return bus.Permanent(errors.New("currency missing"))
		}
		lines <- fmt.Sprintf("%s ledger: %s booked on attempt %d", since(), p.PaymentID, md.Attempt)
		return nil
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	running := make(chan error, 1)
	go func() { running <- b.Run(runCtx) }()

	for _, id := range []string{"P-1", "P-2", "P-3", "P-4"} {
		if err := bus.Publish(ctx, b, PaymentRequested{PaymentID: id, Amount: 1999}); err != nil {
			return err
		}
	}
	// P-1 and P-4 booked; P-2 fails twice, then again after its delay; P-3 is
	// rejected once: 2 + 3 + 1 lines.
	if err := expect(out, lines, 6); err != nil {
		return err
	}

	lane, err := bus.NewPoisonLane(transport, PaymentRequested{}.EventName(), "ledger")
	if err != nil {
		return err
	}
	poisoned, err := lane.List(ctx)
	if err != nil {
		return err
	}
	for _, m := range poisoned {
		fmt.Fprintf(out, "poison lane: %s payload=%s reason=%s attempts=%d error=%q\n",
			m.ID[:8]+"…", m.Payload, m.Failure.Reason, m.Failure.Attempts, m.Failure.Error)
	}

	fmt.Fprintln(out, "operator: bug fixed, replaying the poison lane to the ledger group only")
	validationFixed.Store(true)
	n, err := lane.Replay(ctx, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "operator: replayed %d message(s)\n", n)
	if err := expect(out, lines, 1); err != nil {
		return err
	}
	left, err := lane.List(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "poison lane: %d message(s) left\n", len(left))
	stop()
	return <-running
}

// expect prints n lines from the handlers, or fails after 10s.
func expect(out io.Writer, lines <-chan string, n int) error {
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case l := <-lines:
			fmt.Fprintln(out, l)
		case <-timeout:
			return errors.New("handlers did not report within 10s")
		}
	}
	return nil
}
