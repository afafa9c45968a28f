package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

// Handler handles one event. Returning nil acks the message; an error is a
// failure handled by the subscription's failure policy; Permanent(err) skips
// retries. The context carries the message's Metadata (see MetadataFrom)
// and is cancelled when the attempt times out or the bus shuts down.
type Handler[T Event] func(ctx context.Context, e T) error

// SubscribeOption changes one subscription, over the group's settings in
// Config.Subscriptions.
type SubscribeOption func(*SubscriptionConfig)

// WithConcurrency sets how many messages the subscription handles at once.
func WithConcurrency(n int) SubscribeOption {
	return func(c *SubscriptionConfig) { c.Concurrency = n }
}

// WithTimeout bounds each handler attempt.
func WithTimeout(d time.Duration) SubscribeOption {
	return func(c *SubscriptionConfig) { c.Timeout = d }
}

// Subscribe registers h as group's handler for events of type T. Every group
// receives its own copy of each event; the instances of one group share them.
// The group is provisioned on the transport at once where the transport
// supports it, so events published after Subscribe returns are kept for the
// group even before Run. Handlers start with Run, or at once if the bus is
// running. A group has at most one handler per event: a second Subscribe
// returns ErrDuplicateHandler.
func Subscribe[T Event](b *Bus, group string, h Handler[T], opts ...SubscribeOption) error {
	name, err := eventName[T]()
	if err != nil {
		return fmt.Errorf("bus.Subscribe: %w", err)
	}
	if err := errors.Join(ValidateName("event", name), ValidateName("group", group)); err != nil {
		return fmt.Errorf("bus.Subscribe %s for group %q: %w", name, group, err)
	}
	if h == nil {
		return fmt.Errorf("bus.Subscribe %s for group %s: nil handler", name, group)
	}
	cfg := b.cfg.Subscriptions[group]
	for _, opt := range opts {
		opt(&cfg)
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", name, group, err)
	}
	s := &subscription[T]{bus: b, event: name, topic: b.topic(name), group: group, cfg: cfg, handle: h}
	return b.addSubscription(s.event, s.group, s.topic, cfg, s.handleMessage)
}

// subscription is one typed handler of one group.
type subscription[T Event] struct {
	bus    *Bus
	event  string
	topic  string
	group  string
	cfg    SubscriptionConfig
	handle Handler[T]
}

// handleMessage decodes msg into T and calls the handler with the message's
// metadata in its context. A payload that does not decode never reaches the
// handler: it fails with a DecodeError, which is permanent.
func (s *subscription[T]) handleMessage(msg *message.Message) error {
	md := readMetadata(msg, s.topic, s.group)
	if ct := msg.Metadata.Get(MetaContentType); ct != "" && ct != s.bus.cfg.Codec.ContentType() {
		return &DecodeError{Event: s.event, Err: fmt.Errorf("content-type %q, the codec reads %q", ct, s.bus.cfg.Codec.ContentType())}
	}
	e := newEvent[T]()
	if err := s.bus.cfg.Codec.Unmarshal(msg.Payload, &e); err != nil {
		return &DecodeError{Event: s.event, Err: err}
	}
	ctx := msg.Context()
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	return s.handle(withMetadata(ctx, md), e)
}

// addSubscription provisions the group and adds cfg.Concurrency router
// handlers for it, all consuming from one subscriber of the group.
func (b *Bus) addSubscription(event, group, topic string, cfg SubscriptionConfig, h message.NoPublishHandlerFunc) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", event, group, ErrClosed)
	}
	key := event + "/" + group
	if b.handlers[key] {
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", event, group, ErrDuplicateHandler)
	}
	if p, ok := b.transport.(transports.GroupProvisioner); ok {
		if err := p.ProvisionGroup(context.Background(), topic, group); err != nil {
			return fmt.Errorf("bus.Subscribe %s for group %s: provision: %w", event, group, err)
		}
	}
	sub, err := b.subscriber(group)
	if err != nil {
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", event, group, err)
	}
	handler := b.guard(h)
	for i := range cfg.Concurrency {
		name := fmt.Sprintf("%s/%d", key, i)
		b.router.AddConsumerHandler(name, topic, sub, handler)
	}
	b.handlers[key] = true
	if b.running {
		if err := b.router.RunHandlers(b.runCtx); err != nil {
			return fmt.Errorf("bus.Subscribe %s for group %s: start: %w", event, group, err)
		}
	}
	return nil
}

// subscriber returns the bus's subscriber for group, creating it on first
// use. b.mu is held.
func (b *Bus) subscriber(group string) (*drainSubscriber, error) {
	if s, ok := b.subscribers[group]; ok {
		return s, nil
	}
	sub, err := b.transport.Subscriber(group)
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	s := &drainSubscriber{sub: sub, inflight: b.inflight, stopping: b.stopping, drained: b.drained}
	b.subscribers[group] = s
	return s, nil
}

// guard wraps every handler of the bus: it gives the handler a context that
// Close cancels when the grace period ends, acks or nacks the message as soon
// as the handler returns, and tells Close the message is finished.
func (b *Bus) guard(h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		defer b.inflight.release()
		ctx, cancel := context.WithCancel(msg.Context())
		defer cancel()
		stop := context.AfterFunc(b.handlerCtx, cancel)
		defer stop()
		msg.SetContext(ctx)
		err := h(msg)
		if err != nil {
			msg.Nack()
		} else {
			msg.Ack()
		}
		return err
	}
}
