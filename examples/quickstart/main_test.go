package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestQuickstart(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"checkout: published orders.placed for order A-1001",
		"billing:  charged ada@example.com 42.50 for order A-1001",
		"shipping: attempt 1 for order A-1001 failed",
		"shipping: booked a parcel for order A-1001 on attempt 2",
		"done: both groups handled the event",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
