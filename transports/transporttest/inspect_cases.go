package transporttest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// RunInspector runs the cases of transports.BacklogReader,
// transports.Inspector and transports.Browser, on transports that implement
// them: groups, backlogs and poison lanes read without changing anything.
func RunInspector(t *testing.T, h Harness) {
	runCases(t, h, []testCase{
		{"GroupsAndBacklog", testInspector},
		{"PoisonListOfUnknownGroupCreatesNothing", testPoisonListOfUnknownGroup},
		{"PoisonListChangesNothing", testPoisonListChangesNothing},
	})
}

func testInspector(t *testing.T, h *Harness) {
	e := h.setup(t)
	in, ok := e.tr.(transports.BacklogReader)
	if !ok {
		t.Skip("transport is no transports.BacklogReader")
	}
	lister, lists := e.tr.(transports.Inspector)
	ctx := h.waitCtx(t)
	missing := e.topic + ".missing"
	for range 2 { // a read must not create what it looked for
		if !lists {
			break
		}
		if groups, err := lister.Groups(ctx, missing); err != nil || len(groups) != 0 {
			t.Fatalf("Groups of a topic that does not exist = %v, %v; want none", groups, err)
		}
	}
	for range 2 {
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
	if lists {
		groups, err := lister.Groups(ctx, e.topic)
		if err != nil || !slices.Contains(groups, group) {
			t.Fatalf("Groups(%s) = %v, %v; want %s among them", e.topic, groups, err, group)
		}
		if b, err := in.Backlog(ctx, e.topic, group+"-none"); err != nil || b.Messages != 0 {
			t.Fatalf("Backlog of a group that does not exist = %+v, %v; want empty", b, err)
		}
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

func testPoisonListOfUnknownGroup(t *testing.T, h *Harness) {
	e := h.setup(t)
	in, ok := e.tr.(transports.Inspector)
	if !ok {
		t.Skip("transport is no transports.Inspector")
	}
	b := e.newBus(bus.Config{})
	group := e.group("real")
	mustSubscribe(t, b, group, func(context.Context, Event) error { return nil })
	typo := group + "x"
	lane, err := bus.NewPoisonLane(e.tr, e.topic, typo)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lane.List(h.waitCtx(t))
	if !errors.Is(err, bus.ErrUnknownGroup) || !strings.Contains(err.Error(), group) {
		t.Fatalf("List of a mistyped group = %v, want ErrUnknownGroup naming %s", err, group)
	}
	for _, topic := range []string{e.topic, wire.PoisonTopic(e.topic, typo), wire.RetryTopic(e.topic, typo)} {
		groups, err := in.Groups(h.waitCtx(t), topic)
		if err != nil || slices.Contains(groups, typo) {
			t.Errorf("after listing the mistyped group, %s has groups %v (%v): the read created one", topic, groups, err)
		}
	}
}

func testPoisonListChangesNothing(t *testing.T, h *Harness) {
	e := h.setup(t)
	if _, ok := e.tr.(transports.Browser); !ok {
		t.Skip("transport is no transports.Browser")
	}
	b := e.newBus(bus.Config{})
	group := e.group("browsed")
	mustSubscribeOpts(t, b, group, func(context.Context, Event) error { return bus.Permanent(errors.New("bug")) })
	e.run(b)
	const n = 3
	e.publish(b, n, nil)
	lane, err := bus.NewPoisonLane(e.tr, e.topic, group)
	if err != nil {
		t.Fatal(err)
	}
	first := waitPoison(t, e, lane, n)
	before := positions(first)
	again, err := lane.List(h.waitCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if after := positions(again); after != before {
		t.Errorf("a second List saw %s, the first %s: listing moved the messages", after, before)
	}
}

// positions lists the ids and transport positions of poison messages.
func positions(list []bus.PoisonMessage) string {
	var parts []string
	for _, m := range list {
		parts = append(parts, m.ID+"@"+m.Metadata.Get(wire.PositionMetadataKey))
	}
	return strings.Join(parts, " ")
}
