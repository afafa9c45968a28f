package kafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRemoveGroup: a group that consumed and committed is gone after
// RemoveGroup, once its subscription closed.
func TestRemoveGroup(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic, group := unique("remove"), "tail-1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.ProvisionGroup(ctx, topic, group); err != nil {
		t.Fatal(err)
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(topic, message.NewMessage("m-1", []byte("{}"))); err != nil {
		t.Fatal(err)
	}
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		m.Ack()
	case <-ctx.Done():
		t.Fatal("no message")
	}
	// While the group has a member, RemoveGroup retries until ctx ends...
	short, cancelShort := context.WithTimeout(ctx, 700*time.Millisecond)
	err = tr.RemoveGroup(short, topic, group)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still has members") {
		t.Errorf("RemoveGroup of a group with a member = %v, want the context's error saying it still has members", err)
	}
	// ...and succeeds once the member left.
	closed := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		closed <- sub.Close()
	}()
	if err := tr.RemoveGroup(ctx, topic, group); err != nil {
		t.Fatalf("RemoveGroup while the member leaves: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if groups := listGroups(t, c.ListenAddrs()); groups[group] {
		t.Errorf("group %s still listed after RemoveGroup: %v", group, groups)
	}
	if err := pub.Publish(topic, message.NewMessage("m-2", []byte("{}"))); err != nil {
		t.Fatal(err)
	}
	sub, err = tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err = sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		m.Ack()
	case <-ctx.Done():
		t.Fatal("no message")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if groups := listGroups(t, c.ListenAddrs()); !groups[group] {
		t.Fatalf("group %s not listed before RemoveGroup: %v", group, groups)
	}
	if err := tr.RemoveGroup(ctx, topic, group); err != nil {
		t.Fatalf("RemoveGroup: %v", err)
	}
	if groups := listGroups(t, c.ListenAddrs()); groups[group] {
		t.Errorf("group %s still listed after RemoveGroup: %v", group, groups)
	}
	if err := tr.RemoveGroup(ctx, topic, "never-existed"); err != nil {
		t.Errorf("RemoveGroup of a missing group: %v, want nil", err)
	}
}

// listGroups lists the consumer groups of the cluster at addrs.
func listGroups(t testing.TB, addrs []string) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrListGroupsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	groups := map[string]bool{}
	for _, g := range resp.Groups {
		groups[g.Group] = true
	}
	return groups
}
