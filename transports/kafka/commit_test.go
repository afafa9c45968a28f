package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
)

// committed returns the offset and metadata group committed for partition
// 0 of topic, -1 when none.
func committed(t testing.TB, addrs []string, group, topic string) (int64, string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	for _, rt := range resp.Topics {
		if len(rt.Partitions) == 0 {
			continue
		}
		rp := rt.Partitions[0]
		md := ""
		if rp.Metadata != nil {
			md = *rp.Metadata
		}
		return rp.Offset, md
	}
	return -1, ""
}

// TestCommitAckedPrefix: on one partition, m0…m4 go to five consumers and
// m2's handler is slow. Within a few commit intervals the committed offset
// is 2, the first record not acked, with m3 and m4 listed as acked in the
// commit metadata; a consumer stopped without acking m2 leaves only m2 to
// the group's next consumer, which never sees m3 and m4 again.
func TestCommitAckedPrefix(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	cfg.Partitions = 1
	tr := open(t, cfg)
	topic, group := unique("prefix"), unique("prefixers")
	if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		publish(t, tr, topic, fmt.Sprintf("m%d", i))
	}
	sub, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	acked := map[string]bool{}
	held, release := make(chan struct{}), make(chan struct{})
	var dones []<-chan struct{}
	for range 5 {
		done, err := sub.(transports.Consumer).Consume(ctx, topic, func(m *message.Message) {
			if m.UUID == "m2" {
				close(held)
				<-release
				return // neither acked nor nacked: a nack
			}
			m.Ack()
			mu.Lock()
			acked[m.UUID] = true
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("m2 was not handed out within 30s")
	}
	var off int64
	var meta string
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		all := len(acked) == 4
		mu.Unlock()
		off, meta = committed(t, c.ListenAddrs(), group, topic)
		if all && off == 2 && meta != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(cfg.CommitInterval) // the next commit
	}
	t.Logf("m2 held, the others acked: committed offset %d, metadata %q", off, meta)
	if off != 2 || !strings.HasPrefix(meta, "busline-acked:") {
		t.Fatalf("committed offset %d with metadata %q, want 2 with m3 and m4 listed", off, meta)
	}
	cancel()
	close(release)
	for _, d := range dones {
		<-d
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}

	publish(t, tr, topic, "m5")
	next, err := tr.Subscriber(group)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	nctx, ncancel := context.WithCancel(context.Background())
	defer ncancel()
	msgs, err := next.Subscribe(nctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != "m5" {
		select {
		case m := <-msgs:
			got = append(got, m.UUID)
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatalf("the next consumer got %v and no m5 within 30s", got)
		}
	}
	if strings.Join(got, ",") != "m2,m5" {
		t.Errorf("the next consumer got %v, want [m2 m5]: acked messages came again", got)
	}
}
