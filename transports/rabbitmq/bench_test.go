package rabbitmq_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/busline/busline/transports/rabbitmq"
)

// benchPublishers is how many goroutines publish at once per GOMAXPROCS.
const benchPublishers = 16

var payload = []byte(`{"order":"A-1","amount":1250,"currency":"EUR"}`)

// BenchmarkPublish measures confirmed publishes through the transport, from
// concurrent publishers, to a topic with one group queue.
func BenchmarkPublish(b *testing.B) {
	requireBroker(b)
	for _, channels := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			tr := newTransport(b, rabbitmq.Config{PublishChannels: channels})
			topic, group := ids("bench.publish")
			if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { purge(b, rabbitmq.QueueName(topic, group)) })
			pub, _ := tr.Publisher()
			b.SetParallelism(benchPublishers)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m := message.NewMessage("", payload)
					m.Metadata.Set("ce_type", "bench")
					if err := pub.Publish(topic, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkPublishRawAMQP is the baseline for BenchmarkPublish: amqp091
// alone, the same publishers and channels, deferred (asynchronous) confirms.
func BenchmarkPublishRawAMQP(b *testing.B) {
	requireBroker(b)
	for _, channels := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			conn, err := amqp.Dial(brokerURL())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			topic, group := ids("bench.raw")
			chs := make([]*amqp.Channel, channels)
			for i := range chs {
				if chs[i], err = conn.Channel(); err != nil {
					b.Fatal(err)
				}
				if err := chs[i].Confirm(false); err != nil {
					b.Fatal(err)
				}
			}
			queue := rabbitmq.QueueName(topic, group)
			_ = chs[0].ExchangeDeclare(topic, "fanout", true, false, false, false, nil)
			_, _ = chs[0].QueueDeclare(queue, true, false, false, false, nil)
			_ = chs[0].QueueBind(queue, "", topic, false, nil)
			b.Cleanup(func() { purge(b, queue) })
			var next atomic.Uint64
			b.SetParallelism(benchPublishers)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ch := chs[next.Add(1)%uint64(len(chs))]
					dc, err := ch.PublishWithDeferredConfirm(topic, "", false, false, amqp.Publishing{
						Body: payload, DeliveryMode: amqp.Persistent, Headers: amqp.Table{"ce_type": "bench"},
					})
					if err != nil {
						b.Error(err)
						return
					}
					if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
						b.Errorf("not confirmed: %v", err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkConsume measures one consumer receiving and acking messages
// already in its queue, for several prefetch values: the figures behind
// Config.Prefetch's default.
func BenchmarkConsume(b *testing.B) {
	requireBroker(b)
	for _, prefetch := range []int{1, 8, 32, 128} {
		b.Run(fmt.Sprintf("prefetch=%d", prefetch), func(b *testing.B) {
			tr := newTransport(b, rabbitmq.Config{Prefetch: prefetch})
			topic, group := ids("bench.consume")
			if err := tr.ProvisionGroup(context.Background(), topic, group); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { deleteQueue(b, rabbitmq.QueueName(topic, group)) })
			pub, _ := tr.Publisher()
			batch := make([]*message.Message, 0, 100)
			for i := range b.N {
				batch = append(batch, message.NewMessage("", payload))
				if len(batch) == cap(batch) || i == b.N-1 {
					if err := pub.Publish(topic, batch...); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			sub, _ := tr.Subscriber(group)
			defer sub.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ReportAllocs()
			b.ResetTimer()
			msgs, err := sub.Subscribe(ctx, topic)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				select {
				case m := <-msgs:
					m.Ack()
				case <-time.After(30 * time.Second):
					b.Fatal("consumer stalled")
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

func purge(tb testing.TB, queue string) { deleteQueue(tb, queue) }

func deleteQueue(tb testing.TB, queue string) {
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		tb.Errorf("clean up queue %s: %v", queue, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	_, _ = ch.QueueDelete(queue, false, false, false)
}
