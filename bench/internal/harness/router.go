package harness

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// wayFuncs makes a way of two functions.
type wayFuncs struct {
	prep    func(ctx context.Context, s spec) (topic, error)
	closeFn func() error
}

func (w wayFuncs) prepare(ctx context.Context, s spec) (topic, error) { return w.prep(ctx, s) }

func (w wayFuncs) close() error {
	if w.closeFn == nil {
		return nil
	}
	return w.closeFn()
}

// routerTopic drives a Watermill publisher and subscriber the plain way:
// Publish of a message per call (of a batch's messages in the batch
// scenarios), a router with no middleware whose handler
// returns nil so that the router acks.
type routerTopic struct {
	spec    spec
	pub     message.Publisher
	newSub  func() (message.Subscriber, error)
	cleanup func(ctx context.Context) error // may be nil
}

var _ topic = (*routerTopic)(nil)

func (t *routerTopic) newSender(context.Context) (sender, error) { return routerSender{t}, nil }

func (t *routerTopic) consume(ctx context.Context, handle func(int64)) (func() error, error) {
	sub, err := t.newSub()
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		_ = sub.Close()
		return nil, err
	}
	for i := range t.spec.consumers {
		router.AddConsumerHandler(fmt.Sprintf("bench-%d", i), t.spec.topic, sub, func(msg *message.Message) error {
			sentAt, err := readSentAt(msg.Payload)
			if err != nil {
				return err
			}
			handle(sentAt)
			return nil
		})
	}
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case err := <-runErr:
		_ = sub.Close()
		return nil, fmt.Errorf("router: %w", err)
	case <-ctx.Done():
		_ = router.Close()
		<-runErr
		_ = sub.Close()
		return nil, ctx.Err()
	}
	return func() error {
		err := router.Close()
		err = errors.Join(err, <-runErr)
		_ = sub.Close() // the router closed it already; a second close may complain
		return err
	}, nil
}

func (t *routerTopic) close(ctx context.Context) error {
	if t.cleanup == nil {
		return nil
	}
	return t.cleanup(ctx)
}

// routerSender publishes with the Watermill publisher, one message per
// call, or a batch's messages in one call.
type routerSender struct{ t *routerTopic }

var _ batchSender = routerSender{}

func (s routerSender) send(_ context.Context, sentAt int64) error {
	return s.t.pub.Publish(s.t.spec.topic, message.NewMessage(watermill.NewUUID(), rawPayload(s.t.spec.payloadSize, sentAt)))
}

func (s routerSender) sendBatch(_ context.Context, sentAts []int64) error {
	msgs := make([]*message.Message, len(sentAts))
	for i, sentAt := range sentAts {
		msgs[i] = message.NewMessage(watermill.NewUUID(), rawPayload(s.t.spec.payloadSize, sentAt))
	}
	return s.t.pub.Publish(s.t.spec.topic, msgs...)
}

func (routerSender) flush(context.Context) error { return nil }
func (routerSender) close() error                { return nil }
