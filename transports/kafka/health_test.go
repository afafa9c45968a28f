package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports/kafka"
)

// TestHealthReportsGroupThatCannotJoin: the Watermill adapter only logs and
// loops when its group cannot join; the transport's Health says so, and
// recovers once the group joins.
func TestHealthReportsGroupThatCannotJoin(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic, group := unique("health"), unique("blocked")
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup}, Group: group, Err: kerr.GroupAuthorizationFailed, Count: -1})
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	err = waitHealth(t, tr, func(err error) bool { return errors.Is(err, kafka.ErrGroupNotJoined) })
	t.Logf("Health while the group cannot join: %v", err)
	if err == nil || !errors.Is(err, kafka.ErrGroupNotJoined) {
		t.Fatalf("Health = %v, want ErrGroupNotJoined", err)
	}

	h.Remove()
	publish(t, tr, topic, "after-fix")
	select {
	case m := <-msgs:
		m.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("no message 30s after the fault was removed")
	}
	if err := waitHealth(t, tr, func(err error) bool { return err == nil }); err != nil {
		t.Errorf("Health after the group joined = %v, want nil", err)
	}
}

// waitHealth polls Health until ok accepts its result or 30s pass.
func waitHealth(t *testing.T, tr *kafka.Transport, ok func(error) bool) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := tr.Health(ctx)
		cancel()
		if ok(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // polling a status; there is no event to wait on
	}
}
