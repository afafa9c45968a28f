package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// TestInspectorBacklog leaves a known backlog on kfake and reads it back:
// a provisioned group is listed before it consumed; its backlog counts
// what it has not acked (also what it acked beyond an unacked record); a
// retry lane's backlog adds the delayed records its wait topics hold; a
// topic or group that does not exist has none, and reading creates
// nothing.
func TestInspectorBacklog(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	var in transports.Inspector = tr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, group := unique("inspect.orders"), "billing.eu"

	if groups, err := in.Groups(ctx, topic); err != nil || len(groups) != 0 {
		t.Fatalf("Groups of a missing topic = %v, %v; want none", groups, err)
	}
	if b, err := in.Backlog(ctx, topic, group); err != nil || b != (transports.Backlog{}) {
		t.Fatalf("Backlog of a missing topic = %+v, %v; want empty", b, err)
	}
	if exists(t, c.ListenAddrs(), topic) {
		t.Fatalf("reading %s created it", topic)
	}

	lane := wire.RetryTopic(topic, group)
	for _, tp := range []string{topic, lane} {
		if err := tr.ProvisionGroup(ctx, tp, group); err != nil {
			t.Fatal(err)
		}
	}
	for _, tp := range []string{topic, lane} {
		if groups, err := in.Groups(ctx, tp); err != nil || !slices.Equal(groups, []string{group}) {
			t.Errorf("Groups(%s) after ProvisionGroup = %v, %v; want [%s]", tp, groups, err, group)
		}
	}

	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	before := time.Now()
	const n = 7
	for i := range n {
		m := message.NewMessage(fmt.Sprintf("m-%d", i), []byte(`{}`))
		m.Metadata.Set(wire.MetaPartitionKey, fmt.Sprintf("key-%d", i))
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	b, err := in.Backlog(ctx, topic, group)
	if err != nil || b.Messages != n {
		t.Fatalf("Backlog after %d publishes = %+v, %v; want %d messages", n, b, err, n)
	}
	if b.Oldest.Before(before.Add(-time.Second)) || b.Oldest.After(time.Now()) {
		t.Errorf("Oldest = %v, want between %v and now", b.Oldest, before)
	}
	if b, err := in.Backlog(ctx, topic, "nobody"); err != nil || b != (transports.Backlog{}) {
		t.Errorf("Backlog of a group never provisioned = %+v, %v; want empty", b, err)
	}

	// Ack 3, hold the 4th unacked, stop: 4 left.
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	msgs, err := sub.Subscribe(sctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		select {
		case m := <-msgs:
			if i < 3 {
				m.Ack()
			}
		case <-ctx.Done():
			t.Fatalf("received %d messages", i)
		}
	}
	stop()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := in.Backlog(ctx, topic, group); err != nil || b.Messages != n-3 {
		t.Errorf("Backlog after 3 acks = %+v, %v; want %d", b, err, n-3)
	}

	// The lane: 1 due at once, 2 waiting an hour in its wait topics.
	if err := pub.Publish(lane, message.NewMessage("lane-1", nil)); err != nil {
		t.Fatal(err)
	}
	if err := tr.PublishDelayed(ctx, lane, time.Hour, message.NewMessage("wait-1", nil), message.NewMessage("wait-2", nil)); err != nil {
		t.Fatal(err)
	}
	if b, err := in.Backlog(ctx, lane, group); err != nil || b.Messages != 3 || b.Oldest.IsZero() {
		t.Errorf("Backlog of the retry lane = %+v, %v; want 3 messages (2 in its wait topics) and an oldest time", b, err)
	}
	if groups, err := in.Groups(ctx, topic); err != nil || !slices.Equal(groups, []string{group}) {
		t.Errorf("Groups(%s) at the end = %v, %v; want [%s]", topic, groups, err, group)
	}
}

// exists reports whether topic exists on the cluster at addrs.
func exists(t *testing.T, addrs []string, topic string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return topics.Has(topic)
}

// TestProvisionAfterRemoveGroup: a group removed and provisioned again is
// listed again (the transport does not remember it as provisioned).
func TestProvisionAfterRemoveGroup(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, group := unique("reprovision"), "tail-2"
	for round := range 2 {
		if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
			t.Fatal(err)
		}
		if groups, err := tr.Groups(ctx, topic); err != nil || !slices.Equal(groups, []string{group}) {
			t.Fatalf("round %d: Groups after ProvisionGroup = %v, %v; want [%s]", round, groups, err, group)
		}
		if err := tr.RemoveGroup(ctx, topic, group); err != nil {
			t.Fatal(err)
		}
		if groups, err := tr.Groups(ctx, topic); err != nil || len(groups) != 0 {
			t.Fatalf("round %d: Groups after RemoveGroup = %v, %v; want none", round, groups, err)
		}
	}
}
