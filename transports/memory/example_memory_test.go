package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/bustest"
	"github.com/busline/busline/transports/memory"
)

// The memory transport is a Watermill Pub/Sub with a broker's consumer
// groups: every group provisioned on a topic gets its own copy of each
// message published afterwards, and a message stays queued until it is
// acked.
func ExampleNew() {
	t := memory.New(memory.Config{})
	defer t.Close()
	ctx := context.Background()
	for _, group := range []string{"billing", "shipping"} {
		if err := t.ProvisionGroup(ctx, "orders", group); err != nil {
			panic(err)
		}
	}

	pub, _ := t.Publisher()
	if err := pub.Publish("orders", message.NewMessage("m-1", []byte("A-1"))); err != nil {
		panic(err)
	}
	fmt.Println("queued:", t.Pending("orders", "billing"), t.Pending("orders", "shipping"))

	sub, _ := t.Subscriber("billing")
	defer sub.Close()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, _ := sub.Subscribe(subCtx, "orders")
	m := <-msgs
	m.Nack() // put back at the head of billing's queue
	m = <-msgs
	m.Ack()
	fmt.Println("billing got", string(m.Payload), "twice; queued:", t.Pending("orders", "billing"), t.Pending("orders", "shipping"))
	// Output:
	// queued: 1 1
	// billing got A-1 twice; queued: 0 1
}

// Config.Clock drives the timer heap that keeps delayed messages: with a
// fake clock (package bustest's), a message becomes due when the clock is
// advanced, not when time passes.
func ExampleConfig_clock() {
	clock := bustest.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	t := memory.New(memory.Config{Clock: clock})
	defer t.Close()
	ctx := context.Background()
	_ = t.ProvisionGroup(ctx, "reminders", "mailer")

	if err := t.PublishDelayed(ctx, "reminders", time.Hour, message.NewMessage("m-1", []byte("renew"))); err != nil {
		panic(err)
	}
	fmt.Println("waiting:", t.Waiting(), "queued:", t.Pending("reminders", "mailer"))
	clock.Advance(59 * time.Minute)
	fmt.Println("waiting:", t.Waiting(), "queued:", t.Pending("reminders", "mailer"))
	clock.Advance(time.Minute)
	fmt.Println("waiting:", t.Waiting(), "queued:", t.Pending("reminders", "mailer"), "at", clock.Now().Format(time.TimeOnly))
	// Output:
	// waiting: 1 queued: 0
	// waiting: 1 queued: 0
	// waiting: 0 queued: 1 at 10:00:00
}
