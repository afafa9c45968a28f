package bustest

import (
	"context"

	"github.com/busline/busline/bus"
)

// Context returns a context for calling a handler of T directly, without a
// bus: bus.MetadataFrom returns md in it, with its zero fields filled as a
// bus would fill them for a first delivery: Event and Topic T's event name,
// ID "bustest-message", Source "bustest", Attempt 1. It is t.Context(),
// cancelled when the test ends. This is bus.HandlerContext with defaults.
func Context[T bus.Event](t TB, md bus.Metadata) context.Context {
	name := eventName[T]()
	if md.Event == "" {
		md.Event = name
	}
	if md.Topic == "" {
		md.Topic = name
	}
	if md.ID == "" {
		md.ID = "bustest-message"
	}
	if md.Source == "" {
		md.Source = "bustest"
	}
	return bus.HandlerContext(t.Context(), md)
}
