package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
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
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(c.ListenAddrs(), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if groups, err := admin.ListConsumerGroups(); err != nil || groups[group] == "" {
		t.Fatalf("group %s not listed before RemoveGroup: %v, %v", group, groups, err)
	}
	if err := tr.RemoveGroup(ctx, topic, group); err != nil {
		t.Fatalf("RemoveGroup: %v", err)
	}
	groups, err := admin.ListConsumerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[group]; ok {
		t.Errorf("group %s still listed after RemoveGroup: %v", group, groups)
	}
	if err := tr.RemoveGroup(ctx, topic, "never-existed"); err != nil {
		t.Errorf("RemoveGroup of a missing group: %v, want nil", err)
	}
}

func saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	return sc
}
