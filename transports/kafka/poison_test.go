package kafka_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/wire"
)

// TestPoisonListDoesNotJoinLiveGroup: reading a group's poison lane
// (bus.PoisonLane, as busctl poison list does) consumes as the lane's own
// Kafka group: the consumer group of the live subscription keeps its one
// member throughout, so it never rebalances for the tool.
func TestPoisonListDoesNotJoinLiveGroup(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tr := open(t, testConfig(c.ListenAddrs()))
	topic, group := unique("poisoned"), unique("live")
	if got := kafka.KafkaGroup(wire.PoisonTopic(topic, group), group); got == group {
		t.Fatalf("KafkaGroup of the poison lane = %q, the live group", got)
	}
	b := newBus(t, tr, topic)
	handled := make(chan struct{}, 16)
	if err := bus.Subscribe(b, group, func(context.Context, orderPlaced) error { handled <- struct{}{}; return nil }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	if err := bus.Publish(context.Background(), b, orderPlaced{OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case <-time.After(30 * time.Second):
		t.Fatal("the live group handled nothing within 30s")
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	members := func() int {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups) == 0 {
			t.Errorf("describe group %s: %v", group, err)
			return -1
		}
		return len(resp.Groups[0].Members)
	}
	if n := members(); n != 1 {
		t.Fatalf("the live group has %d members before the list, want 1", n)
	}
	var most atomic.Int64
	most.Store(1)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond): // sampling the membership
			}
			if n := int64(members()); n > most.Load() {
				most.Store(n)
			}
		}
	}()
	lane, err := bus.NewPoisonLane(tr, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := lane.List(ctx)
	close(stop)
	<-watched
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	t.Logf("listed %d poison messages; the live group had at most %d member(s) meanwhile", len(list), most.Load())
	if most.Load() != 1 {
		t.Errorf("the live group had %d members while the poison lane was listed: the tool joined it", most.Load())
	}
}
