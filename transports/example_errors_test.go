package transports_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
)

type note struct {
	Text string `json:"text"`
}

func (note) EventName() string { return "notes.added" }

// A publish error says what became of the message: an oversized event is
// refused before anything is sent (errors.Is ErrTooLarge, and
// MessageTooLargeError names the size and the limit), while an error that
// wraps ErrMaybeSent means the broker may have it, so a retry should reuse
// the event's id (bus.WithID) for consumers that deduplicate.
func ExampleMessageTooLargeError() {
	tr := memory.New(memory.Config{MaxMessageBytes: 8192})
	defer tr.Close()
	b, err := bus.New(tr, bus.Config{Service: "notes"})
	if err != nil {
		panic(err)
	}
	err = bus.Publish(context.Background(), b, note{Text: strings.Repeat("x", 6000)}, bus.WithID("note-1"))
	var tl *transports.MessageTooLargeError
	if errors.As(err, &tl) {
		// The bus keeps room for the failure record a lane adds.
		fmt.Println("refused:", tl.Limit, "of the transport's", tr.Features().MaxMessageBytes, "bytes; may have been sent:", errors.Is(err, transports.ErrMaybeSent))
	}

	// A transport wraps an unconfirmed send with MaybeSent.
	timedOut := transports.MaybeSent(context.DeadlineExceeded)
	fmt.Println(errors.Is(timedOut, transports.ErrMaybeSent), errors.Is(timedOut, context.DeadlineExceeded))
	// Output:
	// refused: 5120 of the transport's 8192 bytes; may have been sent: false
	// true true
}
