package transporttest

import (
	"context"
	"testing"

	"github.com/busline/busline/bus"
)

// Start runs b in the background until the end of the test: it returns once
// b's handlers run, fails the test if Run fails to start, and at cleanup
// stops b and reports an error Run returns.
func Start(t testing.TB, b *bus.Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-b.Running():
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
