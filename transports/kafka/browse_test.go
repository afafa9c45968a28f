package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/busline/busline/wire"
)

// TestBrowse: Browse shows what waits for a group on a lane (past its
// committed offset), oldest first, without consuming it, and a group or
// topic that does not exist has nothing.
func TestBrowse(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	group := unique("browsers")
	lane := wire.PoisonTopic(unique("browsed"), group)
	for i := range 5 {
		publish(t, tr, lane, fmt.Sprintf("p-%d", i))
	}
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, lane)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case m := <-msgs:
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatal("no message within 30s")
		}
	}
	cancel()
	if err := sub.Close(); err != nil { // commits p-0 and p-1
		t.Fatal(err)
	}
	ids := func(limit int) string {
		t.Helper()
		got, err := tr.Browse(context.Background(), lane, group, limit)
		if err != nil {
			t.Fatalf("Browse: %v", err)
		}
		s := ""
		for _, m := range got {
			s += m.UUID + " "
		}
		return s
	}
	if got, want := ids(0), "p-2 p-3 p-4 "; got != want {
		t.Errorf("Browse = %q, want %q", got, want)
	}
	if got, want := ids(2), "p-2 p-3 "; got != want {
		t.Errorf("Browse(limit 2) = %q, want %q", got, want)
	}
	if got, want := ids(0), "p-2 p-3 p-4 "; got != want {
		t.Errorf("a second Browse = %q, want %q: browsing consumed", got, want)
	}
	if got, err := tr.Browse(context.Background(), unique("missing"), group, 0); err != nil || len(got) != 0 {
		t.Errorf("Browse of a missing topic = %d messages, %v; want none", len(got), err)
	}
}
