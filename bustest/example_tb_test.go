package bustest_test

import (
	"context"
	"fmt"
	"slices"
)

// exampleT stands in for the *testing.T an Example does not have: a
// failure panics, so the Example fails loudly, and finish runs the
// cleanups as the end of a test would.
type exampleT struct {
	ctx      context.Context
	cancel   context.CancelFunc
	cleanups []func()
}

func newExampleT() *exampleT {
	ctx, cancel := context.WithCancel(context.Background())
	return &exampleT{ctx: ctx, cancel: cancel}
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Context() context.Context          { return t.ctx }
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// finish ends the "test": its context is cancelled and its cleanups run,
// the last registered first.
func (t *exampleT) finish() {
	t.cancel()
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}
