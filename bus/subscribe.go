package bus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/middleware"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
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

// WithRetry sets the subscription's immediate-retry policy; zero fields
// take their defaults.
func WithRetry(p middleware.RetryPolicy) SubscribeOption {
	return func(c *SubscriptionConfig) { c.Retry = &p }
}

// WithDelays sets the subscription's delayed-redelivery tiers; no argument
// means none: failures go to the poison lane after the immediate retries.
func WithDelays(delays ...time.Duration) SubscribeOption {
	return func(c *SubscriptionConfig) { c.Delays = append([]time.Duration{}, delays...) }
}

// WithOrdered asks for strict order: see SubscriptionConfig.Ordered.
func WithOrdered() SubscribeOption {
	return func(c *SubscriptionConfig) { c.Ordered = true }
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
	cfg.resolve(&b.cfg)
	if err := errors.Join(cfg.validate(), b.checkConsumerTimeout(cfg)); err != nil {
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", name, group, err)
	}
	s := &subscription[T]{bus: b, event: name, topic: b.topic(name), group: group, handle: h}
	return b.addSubscription(s.event, s.group, s.topic, cfg, s.handleMessage)
}

// checkConsumerTimeout refuses a subscription whose delivery, at its worst
// (every immediate attempt running out its timeout, with the backoff between
// them), would stay unsettled past the broker's limit: the broker would take
// it back while its handler runs, and run it again.
func (b *Bus) checkConsumerTimeout(cfg SubscriptionConfig) error {
	ct, ok := b.transport.(transports.ConsumerTimeouter)
	if !ok || cfg.Timeout <= 0 {
		return nil
	}
	limit := ct.ConsumerTimeout()
	if limit <= 0 {
		return nil
	}
	r := *cfg.Retry
	worst := time.Duration(r.Attempts) * cfg.Timeout
	waits := r.Backoff.NewBackOff()
	waits.RandomizationFactor = 0
	for range r.Attempts - 1 {
		worst += time.Duration(float64(waits.NextBackOff()) * (1 + r.Backoff.Jitter))
	}
	if worst < limit {
		return nil
	}
	return fmt.Errorf("%d attempts of at most %v each, with their backoff, can take %v, beyond the broker's consumer timeout of %v, which would take the message back and run it again: lower the timeout or the attempts, or raise the broker's limit (and the transport's setting for it)", r.Attempts, cfg.Timeout, worst, limit)
}

// subscription is one typed handler of one group.
type subscription[T Event] struct {
	bus    *Bus
	event  string
	topic  string
	group  string
	handle Handler[T]
}

// handleMessage decodes msg into T and calls the handler with the message's
// metadata in its context. A payload that does not decode never reaches the
// handler: it fails with a DecodeError, which is permanent.
func (s *subscription[T]) handleMessage(msg *message.Message) error {
	raw, payload, err := eventOf(msg, s.bus.cfg.Codec.ContentType())
	if err != nil {
		return decodeFailure(s.event, err)
	}
	md := readMetadata(raw, msg.UUID, s.topic, s.group)
	e := newEvent[T]()
	if err := s.bus.cfg.Codec.Unmarshal(payload, &e); err != nil {
		return decodeFailure(s.event, err)
	}
	return s.handle(withMetadata(msg.Context(), md), e)
}

// decodeFailure is the permanent failure of a payload that does not decode.
func decodeFailure(event string, err error) error {
	return &middleware.PermanentError{Err: &DecodeError{Event: event, Err: err}, Reason: wire.ReasonDecode}
}

// addSubscription provisions the group on the topic and its lanes, and adds
// cfg.Concurrency workers per topic, all consuming through one subscriber of
// the group; they start with Run, or at once if the bus runs.
func (b *Bus) addSubscription(event, group, topic string, cfg SubscriptionConfig, h message.NoPublishHandlerFunc) error {
	key := event + "/" + group
	running := &atomic.Int64{}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", event, group, ErrClosed)
	case b.handlers[key] != nil:
		b.mu.Unlock()
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", event, group, ErrDuplicateHandler)
	}
	b.handlers[key] = running // reserved while the group is provisioned
	b.mu.Unlock()
	if err := b.addWorkers(event, group, topic, key, running, cfg, h); err != nil {
		b.mu.Lock()
		delete(b.handlers, key)
		b.mu.Unlock()
		return fmt.Errorf("bus.Subscribe %s for group %s: %w", event, group, err)
	}
	return nil
}

// addWorkers provisions the group on the topic and its lanes, without
// holding b.mu and with a context that Close cancels, then adds the
// subscription's workers.
func (b *Bus) addWorkers(event, group, topic, key string, running *atomic.Int64, cfg SubscriptionConfig, h message.NoPublishHandlerFunc) error {
	lanes := middleware.Lanes{Publisher: b.publisher, Topic: topic, Group: group, Delays: cfg.Delays, Handler: key, Ordered: cfg.Ordered}
	delayer, native := b.transport.(transports.Delayer)
	if native {
		lanes.Delay = func(ctx context.Context, topic string, delay time.Duration, msg *message.Message) error {
			return delayer.PublishDelayed(ctx, topic, delay, msg)
		}
	}
	// The retry lane is consumed even without delays, or in ordered mode:
	// replays from the poison lane, and redeliveries a former configuration
	// scheduled, arrive there.
	retry := wire.RetryTopic(topic, group)
	if err := b.provision(b.stopCtx, []string{topic, retry, wire.PoisonTopic(topic, group)}, group); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	sub, err := b.subscriber(group)
	if err != nil {
		return err
	}
	obs := b.cfg.Observer
	// pipeline returns the failure pipeline for messages consumed from t.
	pipeline := func(t string) message.HandlerFunc {
		handler := middleware.Timeout(cfg.Timeout)(middleware.Recoverer(
			func(msg *message.Message) ([]*message.Message, error) { return nil, h(msg) }))
		if obs != nil {
			d := Delivery{Event: event, Group: group, Topic: t, Transport: b.kind}
			delivery, attempt := observe(obs, d)
			l := lanes
			l.Diverted = diverted(obs, d)
			return delivery(l.Middleware(middleware.Retry(*cfg.Retry)(attempt(handler))))
		}
		return lanes.Middleware(middleware.Retry(*cfg.Retry)(handler))
	}
	mainHandle, retryHandle := pipeline(topic), pipeline(retry)
	var workers []worker
	// Where the transport cannot delay, redeliveries reach the retry lane
	// early and its workers wait for them (bounded; see WaitDue).
	mainW := worker{sub: sub, topic: topic, handle: mainHandle, running: running}
	retryW := worker{sub: sub, topic: retry, handle: retryHandle, waitDue: !native, delays: cfg.Delays, running: running}
	if _, ok := sub.(transports.ConcurrentConsumer); ok && cfg.Concurrency > 1 {
		// One consumer per topic, its messages spread over Concurrency
		// workers by key: different keys in parallel, each in order.
		mainW.keyed, retryW.keyed = cfg.Concurrency, cfg.Concurrency
		workers = append(workers, mainW, retryW)
	} else {
		for range cfg.Concurrency {
			workers = append(workers, mainW, retryW)
		}
	}
	health := b.track(key, Subscription{Event: event, Group: group, Topic: topic, Retry: retry, Poison: wire.PoisonTopic(topic, group)}, topic, retry)
	for i := range workers {
		workers[i].health = health
	}
	if b.started {
		for _, w := range workers {
			if err := b.start(w); err != nil {
				return err
			}
		}
	} else {
		b.pending = append(b.pending, workers...)
	}
	return nil
}

// provision creates group's queue or consumer group on each topic where the
// transport supports it, so that messages published from now on are kept.
func (b *Bus) provision(ctx context.Context, topics []string, group string) error {
	p, ok := b.transport.(transports.GroupProvisioner)
	if !ok {
		return nil
	}
	for _, t := range topics {
		if err := p.ProvisionGroup(ctx, t, group); err != nil {
			return fmt.Errorf("provision %s: %w", t, err)
		}
	}
	return nil
}

// subscriber returns the bus's subscriber for group, creating it on first
// use. b.mu is held.
func (b *Bus) subscriber(group string) (message.Subscriber, error) {
	if s, ok := b.subscribers[group]; ok {
		return s, nil
	}
	s, err := b.transport.Subscriber(group)
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	b.subscribers[group] = s
	return s, nil
}
