package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// buslineTopic is busline's way: bus.Publish (or bus.PublishBatch) of a
// typed Sample, bus.Subscribe with the default middleware (recoverer,
// retries, delayed lanes, poison lane), over a transport the plugin opened.
type buslineTopic struct {
	spec    spec
	b       *bus.Bus
	pad     string
	handle  atomic.Pointer[func(int64)]
	runErr  chan error
	cleanup []func(ctx context.Context) error

	// The keyed scenarios: the key names, by key (index 0 unused), the
	// senders created so far, and the consumer's order check.
	keyNames []string
	senders  atomic.Int64
	order    *keyOrder
}

var (
	_ topic        = (*buslineTopic)(nil)
	_ orderChecker = (*buslineTopic)(nil)
)

// quiet is the logger of every bus and transport of the harness.
var quiet = slog.New(slog.DiscardHandler)

// prepareBusline creates a bus over t whose Sample event maps to s.topic
// and subscribes s.group, which provisions the group and its lanes. With
// observe, otelbus is the bus's Observer. cleanup, which may be nil, runs
// when the topic closes.
func prepareBusline(t transports.Transport, s spec, observe bool, cleanup func(ctx context.Context) error) (_ *buslineTopic, err error) {
	bt := &buslineTopic{spec: s, pad: samplePad(s.payloadSize, s.keys > 0)}
	if cleanup != nil {
		bt.cleanup = append(bt.cleanup, cleanup)
	}
	defer func() {
		if err != nil {
			_ = bt.close(context.Background())
		}
	}()
	cfg := bus.Config{
		Service: "bench",
		Logger:  quiet,
		Topics:  map[string]string{sampleEvent: s.topic, keyedEvent: s.topic},
	}
	if observe {
		obs, shutdown, err := newObserver()
		if err != nil {
			return nil, err
		}
		bt.cleanup = append(bt.cleanup, shutdown)
		cfg.Observer = obs
	}
	if bt.b, err = bus.New(t, cfg); err != nil {
		return nil, err
	}
	if s.keys == 0 {
		err = bus.Subscribe(bt.b, s.group, func(_ context.Context, e Sample) error {
			bt.handled(e.SentAt)
			return nil
		}, bus.WithConcurrency(s.consumers))
		if err != nil {
			return nil, err
		}
		return bt, nil
	}
	bt.order = newKeyOrder(s.keys)
	bt.keyNames = make([]string, s.keys+1)
	for k := 1; k <= s.keys; k++ {
		bt.keyNames[k] = "k" + strconv.Itoa(k)
	}
	err = bus.Subscribe(bt.b, s.group, func(_ context.Context, e KeyedSample) error {
		bt.order.start(e.Key, e.Seq)
		defer bt.order.done(e.Key)
		bt.handled(e.SentAt)
		return nil
	}, bus.WithConcurrency(s.consumers))
	if err != nil {
		return nil, err
	}
	return bt, nil
}

// handled passes a handled message's stamp to the measurement's consumer.
func (t *buslineTopic) handled(sentAt int64) {
	if h := t.handle.Load(); h != nil {
		(*h)(sentAt)
	}
}

// buslineTopics returns the topics busline creates for s: the main topic,
// the retry lane and the poison lane.
func buslineTopics(s spec) []string {
	return []string{s.topic, wire.RetryTopic(s.topic, s.group), wire.PoisonTopic(s.topic, s.group)}
}

func (t *buslineTopic) newSender(context.Context) (sender, error) {
	if t.spec.keys == 0 {
		return buslineSender{t}, nil
	}
	index := int(t.senders.Add(1) - 1)
	return &keyedBuslineSender{t: t, keys: newKeySender(index, t.spec.keys, t.spec.publishers, t.spec.keyRun)}, nil
}

func (t *buslineTopic) violations() int64 {
	if t.order == nil {
		return 0
	}
	return t.order.violations()
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
	var errs []error
	if t.b != nil {
		errs = append(errs, t.b.Close(ctx))
	}
	for _, c := range t.cleanup {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// buslineSender publishes with bus.Publish, and batches with
// bus.PublishBatch.
type buslineSender struct{ t *buslineTopic }

var _ batchSender = buslineSender{}

func (s buslineSender) send(ctx context.Context, sentAt int64) error {
	return bus.Publish(ctx, s.t.b, newSample(sentAt, s.t.pad))
}

func (s buslineSender) sendBatch(ctx context.Context, sentAts []int64) error {
	items := make([]bus.BatchItem, len(sentAts))
	for i, sentAt := range sentAts {
		items[i] = bus.Item(newSample(sentAt, s.t.pad))
	}
	_, err := bus.PublishBatch(ctx, s.t.b, items...)
	return err
}

func (buslineSender) flush(context.Context) error { return nil }
func (buslineSender) close() error                { return nil }

// keyedBuslineSender publishes each sample with the next of its keys
// (bus.WithKey) and that key's next seq; the warm-up message has no key.
type keyedBuslineSender struct {
	t    *buslineTopic
	keys *keySender
}

func (s *keyedBuslineSender) send(ctx context.Context, sentAt int64) error {
	e := KeyedSample{SentAt: sentAt, Pad: s.t.pad}
	if sentAt == warmup {
		return bus.Publish(ctx, s.t.b, e)
	}
	e.Key, e.Seq = s.keys.take()
	if e.Key == 0 {
		return bus.Publish(ctx, s.t.b, e)
	}
	return bus.Publish(ctx, s.t.b, e, bus.WithKey(s.t.keyNames[e.Key]))
}

func (*keyedBuslineSender) flush(context.Context) error { return nil }
func (*keyedBuslineSender) close() error                { return nil }
