package kafka_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestScheduledUnderLoad runs six scheduled-publish cases at once (1,000
// delays over 0–3s each, two groups): every message reaches both groups.
// It caught a mover that resumed a partition before pausing it, when the
// head was due within a millisecond, which left the partition paused for
// good. Soak only (BUSLINE_SOAK=1): it loads the machine for 20s.
func TestScheduledUnderLoad(t *testing.T) {
	if os.Getenv("BUSLINE_SOAK") == "" {
		t.Skip("soak test: set BUSLINE_SOAK=1")
	}
	c := newCluster(t)
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			tr := open(t, testConfig(c.ListenAddrs()))
			topic := unique("sched")
			var mu sync.Mutex
			got := map[string]map[string]bool{"a": {}, "b": {}}
			for g := range got {
				sub, err := tr.Subscriber(g + topic)
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
				go func() {
					for m := range msgs {
						mu.Lock()
						got[g][m.UUID] = true
						mu.Unlock()
						m.Ack()
					}
				}()
			}
			const n = 1000
			for i := range n {
				d := time.Duration(i) * 3 * time.Second / n
				if err := tr.PublishDelayed(context.Background(), topic, d, message.NewMessage(fmt.Sprintf("s-%d", i), nil)); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(40 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(got["a"]) == n && len(got["b"]) == n
				mu.Unlock()
				if done {
					return
				}
				time.Sleep(100 * time.Millisecond) // polling counters
			}
			mu.Lock()
			var missing []string
			for i := range n {
				id := fmt.Sprintf("s-%d", i)
				if !got["a"][id] || !got["b"][id] {
					missing = append(missing, fmt.Sprintf("%s(a=%v,b=%v)", id, got["a"][id], got["b"][id]))
				}
			}
			mu.Unlock()
			t.Errorf("missing %d: %v", len(missing), missing[:min(len(missing), 30)])
			dump(t, c.ListenAddrs(), topic)
		})
	}
}

// dump logs each topic of topic's family (wait topics included) with its
// high watermark and what its mover group committed.
func dump(t *testing.T, addrs []string, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Log(err)
		return
	}
	defer cl.Close()
	ctx := context.Background()
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Log(err)
		return
	}
	var topics []string
	for _, tp := range md.Topics {
		if tp.Topic != nil && len(*tp.Topic) >= len(topic) && (*tp.Topic)[:len(topic)] == topic {
			topics = append(topics, *tp.Topic)
		}
	}
	sort.Strings(topics)
	for _, tn := range topics {
		lo := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = tn
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 0, -1
		rt.Partitions = append(rt.Partitions, rp)
		lo.Topics = append(lo.Topics, rt)
		resp, err := lo.RequestWith(ctx, cl)
		hw := int64(-2)
		if err == nil && len(resp.Topics) > 0 && len(resp.Topics[0].Partitions) > 0 {
			hw = resp.Topics[0].Partitions[0].Offset
		}
		off, _ := committed(t, addrs, topic+".delay", tn)
		t.Logf("topic %s hw %d mover committed %d", tn, hw, off)
	}
}
