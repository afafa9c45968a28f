package harness

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// buslineTopic is busline's way: bus.Publish of a typed Sample, bus.Subscribe
// with the default middleware (recoverer, retries, delayed lanes, poison
// lane), over a transport the plugin opened.
type buslineTopic struct {
	spec    spec
	b       *bus.Bus
	pad     string
	handle  atomic.Pointer[func(int64)]
	runErr  chan error
	cleanup func(ctx context.Context) error // may be nil
}

var _ topic = (*buslineTopic)(nil)

// quiet is the logger of every bus and transport of the harness.
var quiet = slog.New(slog.DiscardHandler)

// prepareBusline creates a bus over t whose Sample event maps to s.topic
// and subscribes s.group, which provisions the group and its lanes.
func prepareBusline(t transports.Transport, s spec, cleanup func(ctx context.Context) error) (*buslineTopic, error) {
	b, err := bus.New(t, bus.Config{
		Service: "bench",
		Logger:  quiet,
		Topics:  map[string]string{sampleEvent: s.topic},
	})
	if err != nil {
		return nil, err
	}
	bt := &buslineTopic{spec: s, b: b, pad: samplePad(s.payloadSize), cleanup: cleanup}
	err = bus.Subscribe(b, s.group, func(_ context.Context, e Sample) error {
		if h := bt.handle.Load(); h != nil {
			(*h)(e.SentAt)
		}
		return nil
	}, bus.WithConcurrency(s.consumers))
	if err != nil {
		_ = b.Close(context.Background())
		return nil, err
	}
	return bt, nil
}

// buslineTopics returns the topics busline creates for s: the main topic,
// the retry lane and the poison lane.
func buslineTopics(s spec) []string {
	return []string{s.topic, wire.RetryTopic(s.topic, s.group), wire.PoisonTopic(s.topic, s.group)}
}

func (t *buslineTopic) newSender(context.Context) (sender, error) {
	return syncSender(func(ctx context.Context, sentAt int64) error {
		return bus.Publish(ctx, t.b, newSample(sentAt, t.pad))
	}), nil
}

func (t *buslineTopic) consume(ctx context.Context, handle func(int64)) (func() error, error) {
	t.handle.Store(&handle)
	t.runErr = make(chan error, 1)
	go func() { t.runErr <- t.b.Run(context.Background()) }()
	select {
	case <-t.b.Running():
	case err := <-t.runErr:
		return nil, fmt.Errorf("bus.Run: %w", err)
	case <-ctx.Done():
		_ = t.b.Close(context.Background())
		<-t.runErr
		return nil, ctx.Err()
	}
	return func() error {
		err := t.b.Close(context.Background())
		if runErr := <-t.runErr; err == nil {
			err = runErr
		}
		return err
	}, nil
}

func (t *buslineTopic) close(ctx context.Context) error {
	err := t.b.Close(ctx)
	if t.cleanup != nil {
		if cerr := t.cleanup(ctx); err == nil {
			err = cerr
		}
	}
	return err
}
