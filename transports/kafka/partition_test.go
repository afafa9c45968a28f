package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/wire"
)

// javaMurmur2 are murmur2 hashes computed by the Java client
// (org.apache.kafka.common.utils.Utils.murmur2, from Kafka's UtilsTest),
// whose default partitioner puts a keyed record on partition
// (hash & 0x7fffffff) % partitions.
var javaMurmur2 = map[string]int32{
	"21":                         -973932308,
	"foobar":                     -790332482,
	"a-little-bit-long-string":   -985981536,
	"a-little-bit-longer-string": -1486304829,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	"abc": 479470107,
}

// TestKeyPartitioning: a key lands on the partition the Java client's
// default partitioner picks for it, and on the one a franz-go producer
// with default settings picks, so one key maps to one partition whichever
// client produced it.
func TestKeyPartitioning(t *testing.T) {
	t.Parallel()
	const partitions = 12
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	cfg.Partitions = partitions
	tr := open(t, cfg)
	topic, plain := unique("keys"), unique("keys-franz")
	keys := []string{}
	for k := range javaMurmur2 {
		keys = append(keys, k)
	}
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("customer-%d", i))
	}
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, k := range keys {
		m := message.NewMessage(k, []byte("{}"))
		m.Metadata.Set(kafka.PartitionKeyHeader, k)
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	// A franz-go producer with default settings, on a topic with as many
	// partitions (created by the transport).
	if err := tr.ProvisionGroup(context.Background(), plain, "none"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	franz := map[string]int32{}
	for _, k := range keys {
		r := &kgo.Record{Topic: plain, Key: []byte(k), Value: []byte("{}")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		franz[k] = r.Partition
	}

	got := readPartitions(t, c.ListenAddrs(), topic, len(keys))
	for k, h := range javaMurmur2 {
		if want := int32(uint32(h)&0x7fffffff) % partitions; got[k] != want {
			t.Errorf("key %q on partition %d, the Java client's is %d", k, got[k], want)
		}
	}
	for _, k := range keys {
		if got[k] != franz[k] {
			t.Errorf("key %q on partition %d, a default franz-go producer's is %d", k, got[k], franz[k])
		}
	}
}

// readPartitions reads want records of topic and returns each one's
// partition by key.
func readPartitions(t testing.TB, addrs []string, topic string, want int) map[string]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]int32{}
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Key)] = r.Partition })
	}
	if len(got) < want {
		t.Fatalf("read %d of %d records", len(got), want)
	}
	return got
}

// TestPositionMetadata: every consumed message carries its partition/offset
// under wire.PositionMetadataKey, which the failure pipeline records
// as busline_position.
func TestPositionMetadata(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cfg := testConfig(c.ListenAddrs())
	cfg.Partitions = 1
	tr := open(t, cfg)
	topic := unique("position")
	publish(t, tr, topic, "p-0")
	publish(t, tr, topic, "p-1")
	sub, err := tr.Subscriber("positions")
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
	for i := range 2 {
		select {
		case m := <-msgs:
			if got, want := m.Metadata.Get(wire.PositionMetadataKey), fmt.Sprintf("0/%d", i); got != want {
				t.Errorf("message %s at position %q, want %q", m.UUID, got, want)
			}
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatal("no message within 30s")
		}
	}
}

// TestBrokersFromEnv: with no brokers configured, New uses
// BUSLINE_KAFKA_BROKERS, the variable the devkafka banner names.
func TestBrokersFromEnv(t *testing.T) {
	c := newCluster(t)
	t.Setenv(kafka.EnvBrokers, " "+c.ListenAddrs()[0]+" ,")
	cfg := testConfig(nil)
	tr := open(t, cfg)
	if got := tr.Config().Brokers; len(got) != 1 || got[0] != c.ListenAddrs()[0] {
		t.Errorf("Config().Brokers = %v, want [%s] from %s", got, c.ListenAddrs()[0], kafka.EnvBrokers)
	}
	publish(t, tr, unique("env"), "via-env")
}
