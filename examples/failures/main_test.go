package main

import (
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFailures(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`ledger: P-1 booked on attempt 1`),
		regexp.MustCompile(`ledger: P-2 attempt 1 failed`),
		regexp.MustCompile(`ledger: P-2 attempt 2 failed`),
		regexp.MustCompile(`(?m)^ *1\d{3}ms ledger: P-2 booked on attempt 3`), // after the 1s tier
		regexp.MustCompile(`poison lane: \S+ payload={"payment_id":"P-3","amount_cents":1999} reason=permanent attempts=1 error="currency missing"`),
		regexp.MustCompile(`operator: replayed 1 message`),
		regexp.MustCompile(`ledger: P-3 booked on attempt 2`),
		regexp.MustCompile(`poison lane: 0 message\(s\) left`),
	} {
		if !want.MatchString(got) {
			t.Errorf("output does not match %s:\n%s", want, got)
		}
	}
	// P-4 was published after P-2 and handled while P-2 waited in its lane.
	if strings.Index(got, "P-4 booked") > strings.Index(got, "P-2 booked") {
		t.Errorf("P-4 waited for P-2's delayed redelivery:\n%s", got)
	}
}
