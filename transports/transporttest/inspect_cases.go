package transporttest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
)

// RunInspector runs the cases of transports.Inspector, on transports that
// implement it: groups and backlogs read without changing anything.
func RunInspector(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"GroupsAndBacklog", testInspector},
	})
}

func testInspector(t *testing.T, h *Harness) {
	e := h.setup(t)
	in, ok := e.tr.(transports.Inspector)
	if !ok {
		t.Skip("transport is no transports.Inspector")
	}
	ctx := h.waitCtx(t)
	missing := e.topic + ".missing"
	for range 2 { // a read must not create what it looked for
		if groups, err := in.Groups(ctx, missing); err != nil || len(groups) != 0 {
			t.Fatalf("Groups of a topic that does not exist = %v, %v; want none", groups, err)
		}
		if b, err := in.Backlog(ctx, missing, "nobody"); err != nil || b.Messages != 0 {
			t.Fatalf("Backlog of a topic that does not exist = %+v, %v; want empty", b, err)
		}
	}
	b := e.newBus(bus.Config{})
	group := e.group("inspected")
	rec := newRecorder()
	release := make(chan struct{})
	mustSubscribe(t, b, group, func(ctx context.Context, ev Event) error {
		<-release
		rec.record(ctx, ev)
		return nil
	})
	before := time.Now()
	const n = 5
	e.publish(b, n, nil)
	groups, err := in.Groups(ctx, e.topic)
	if err != nil || !slices.Contains(groups, group) {
		t.Fatalf("Groups(%s) = %v, %v; want %s among them", e.topic, groups, err, group)
	}
	backlog, err := in.Backlog(ctx, e.topic, group)
	if err != nil || backlog.Messages != n {
		t.Fatalf("Backlog before consuming = %+v, %v; want %d messages", backlog, err, n)
	}
	if !backlog.Oldest.IsZero() && (backlog.Oldest.Before(before.Add(-time.Second)) || backlog.Oldest.After(time.Now().Add(time.Second))) {
		t.Errorf("oldest message published at %v, want between %v and now", backlog.Oldest, before)
	}
	e.run(b)
	close(release)
	rec.waitFor(e, "every event", atLeast(n))
	waitUntil(t, h.Timeout, "an empty backlog once every event was acked", func() bool {
		backlog, err = in.Backlog(ctx, e.topic, group)
		return err == nil && backlog.Messages == 0
	})
}
