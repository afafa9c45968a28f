package harness

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/busline/busline/transports/memory"
)

// openMemory opens the in-process ways: a buffered Go channel (raw; it is
// synchronous already, so memory has no raw-sync), Watermill's GoChannel
// (persistent, so that a backlog waits for its consumer), and busline's
// memory transport.
func openMemory(_ context.Context, c *Config, _ string) (*plugin, error) {
	capacity := max(c.PublishMessages, c.E2EMessages, c.Backlog, c.LatencyRate*int(c.LatencyDuration.Seconds()+1)) + 16
	return &plugin{
		describe: "in-process",
		ways: map[string]way{
			WayRaw: wayFuncs{prep: func(_ context.Context, s spec) (topic, error) {
				return &chanTopic{spec: s, ch: make(chan []byte, capacity)}, nil
			}},
			WayWatermill: wayFuncs{prep: func(_ context.Context, s spec) (topic, error) {
				gc := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
				return &routerTopic{
					spec:    s,
					pub:     gc,
					newSub:  func() (message.Subscriber, error) { return gc, nil },
					cleanup: func(context.Context) error { return gc.Close() },
				}, nil
			}},
			WayTransport: wayFuncs{prep: func(ctx context.Context, s spec) (topic, error) {
				t := memory.New(memory.Config{})
				if err := t.ProvisionGroup(ctx, s.topic, s.group); err != nil {
					return nil, err
				}
				pub, err := t.Publisher()
				if err != nil {
					return nil, err
				}
				return &routerTopic{
					spec:    s,
					pub:     pub,
					newSub:  func() (message.Subscriber, error) { return t.Subscriber(s.group) },
					cleanup: func(context.Context) error { return t.Close() },
				}, nil
			}},
			WayBusline:     wayFuncs{prep: func(_ context.Context, s spec) (topic, error) { return prepareMemoryBusline(s, false) }},
			WayBuslineOtel: wayFuncs{prep: func(_ context.Context, s spec) (topic, error) { return prepareMemoryBusline(s, true) }},
		},
	}, nil
}

// prepareMemoryBusline is busline's way over a memory transport of its own.
func prepareMemoryBusline(s spec, observe bool) (topic, error) {
	t := memory.New(memory.Config{})
	return prepareBusline(t, s, observe, func(context.Context) error { return t.Close() })
}

// chanTopic is the raw in-process way: a buffered channel handoff, large
// enough to hold every message of a measurement.
type chanTopic struct {
	spec spec
	ch   chan []byte
}

func (t *chanTopic) newSender(context.Context) (sender, error) {
	return syncSender(func(ctx context.Context, sentAt int64) error {
		select {
		case t.ch <- rawPayload(t.spec.payloadSize, sentAt):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}), nil
}

func (t *chanTopic) consume(_ context.Context, handle func(int64)) (func() error, error) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range t.spec.consumers {
		wg.Go(func() {
			for {
				select {
				case b := <-t.ch:
					if sentAt, err := readSentAt(b); err == nil {
						handle(sentAt)
					}
				case <-done:
					return
				}
			}
		})
	}
	return func() error {
		close(done)
		wg.Wait()
		return nil
	}, nil
}

func (t *chanTopic) close(context.Context) error { return nil }
