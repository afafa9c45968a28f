package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports/kafka"
)

// BenchmarkPublish measures Publish to kfake on loopback: busline's
// publisher one message per call, from many goroutines, and in batches of
// 100 (bench/harness compares it with the Watermill adapter and raw
// clients).
func BenchmarkPublish(b *testing.B) {
	c := newCluster(b)
	tr := open(b, testConfig(c.ListenAddrs()))
	payload := []byte(`{"order_id":"A-1","customer":"ada","total":12.5}`)
	newMsg := func(i int) *message.Message {
		m := message.NewMessage(watermill.NewUUID(), payload)
		m.Metadata.Set("ce_type", "orders.placed")
		m.Metadata.Set(kafka.PartitionKeyHeader, fmt.Sprintf("k%d", i%16))
		return m
	}
	report := func(b *testing.B, start time.Time, n int) {
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msg/s")
	}
	b.Run("Busline/Sequential", func(b *testing.B) {
		pub, _ := tr.Publisher()
		topic := unique("bench")
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			if err := pub.Publish(topic, newMsg(i)); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start, b.N)
	})
	b.Run("Busline/Parallel", func(b *testing.B) {
		pub, _ := tr.Publisher()
		topic := unique("bench")
		b.SetParallelism(16)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if err := pub.Publish(topic, newMsg(i)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		report(b, start, b.N)
	})
	b.Run("Busline/Batch100", func(b *testing.B) {
		pub, _ := tr.Publisher()
		topic := unique("bench")
		start := time.Now()
		sent := 0
		for b.Loop() {
			batch := make([]*message.Message, 100)
			for j := range batch {
				batch[j] = newMsg(j)
			}
			if err := pub.Publish(topic, batch...); err != nil {
				b.Fatal(err)
			}
			sent += len(batch)
		}
		report(b, start, sent)
	})
}

// BenchmarkEndToEnd publishes in batches of 100 and consumes everything with
// one subscription (one message in flight) and with eight.
func BenchmarkEndToEnd(b *testing.B) {
	c := newCluster(b)
	tr := open(b, testConfig(c.ListenAddrs()))
	for _, consumers := range []int{1, 8} {
		b.Run(fmt.Sprintf("Consumers%d", consumers), func(b *testing.B) {
			topic, group := unique("e2e"), unique("bench")
			if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
				b.Fatal(err)
			}
			sub, _ := tr.Subscriber(group)
			defer sub.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan struct{}, 1024)
			for range consumers {
				msgs, err := sub.Subscribe(ctx, topic)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for m := range msgs {
						m.Ack()
						got <- struct{}{}
					}
				}()
			}
			pub, _ := tr.Publisher()
			// Wait for the group to join before measuring.
			if err := pub.Publish(topic, message.NewMessage("warm-up", []byte("{}"))); err != nil {
				b.Fatal(err)
			}
			select {
			case <-got:
			case <-time.After(time.Minute):
				b.Fatal("group did not join within a minute")
			}
			b.ResetTimer()
			n := b.N
			start := time.Now()
			go func() {
				for i := 0; i < n; i += 100 {
					batch := make([]*message.Message, 0, 100)
					for j := i; j < min(i+100, n); j++ {
						batch = append(batch, message.NewMessage(watermill.NewUUID(), []byte("{}")))
					}
					if err := pub.Publish(topic, batch...); err != nil {
						b.Error(err)
						return
					}
				}
			}()
			timeout := time.After(2 * time.Minute)
			for range n {
				select {
				case <-got:
				case <-timeout:
					b.Fatal("timed out")
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msg/s")
		})
	}
}
