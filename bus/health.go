package bus

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Health is what (*Bus).Health found: the transport's connectivity and the
// state of every subscription.
type Health struct {
	// Transport is the transport's kind (see TransportKind).
	Transport string
	// TransportErr is the transport's Health error: nil when it can publish
	// and consume.
	TransportErr error
	// Running is true from the moment Run started every handler registered
	// before it until Close starts.
	Running bool
	// Subscriptions lists one entry per Subscribe (event and group), sorted
	// by event then group.
	Subscriptions []SubscriptionHealth
}

// SubscriptionHealth is the state of one subscription.
type SubscriptionHealth struct {
	Event string // the event name
	Group string // the consumer group
	Topic string // the event's topic; the subscription also consumes its retry lane

	// Joined is true once every consumer of the subscription (on the topic
	// and on the retry lane) started: the transport accepted the
	// subscription (declared the queue, joined the consumer group or
	// created the stream group). Whether a Kafka consumer has partitions
	// assigned at this moment is the transport's to know.
	Joined bool

	// Consuming is true while every topic the subscription consumes has a
	// running consumer; a consumer whose subscription the transport ended
	// while the bus runs makes it false.
	Consuming bool

	// LastErr is the last error that kept the subscription from doing its
	// work: a consumer that could not start, a message left for redelivery
	// because its lane write failed. Handler failures, which the failure
	// pipeline handles, are not counted. Nil if none; LastErrAt is when.
	LastErr   error
	LastErrAt time.Time
}

// Ready reports whether h is ready for traffic (Kubernetes readiness): the
// bus runs, the transport is healthy and every subscription is consuming.
func (h Health) Ready() bool {
	if !h.Running || h.TransportErr != nil {
		return false
	}
	for _, s := range h.Subscriptions {
		if !s.Consuming {
			return false
		}
	}
	return true
}

// Live reports whether the process is worth keeping (Kubernetes liveness):
// false only when a subscription that had joined stopped consuming while
// the bus runs, which a restart would mend. A broker that is down is not a
// liveness failure: restarting would not bring it back.
func (h Health) Live() bool {
	if !h.Running {
		return true
	}
	for _, s := range h.Subscriptions {
		if s.Joined && !s.Consuming {
			return false
		}
	}
	return true
}

// Health reports the transport's connectivity (its Health, bounded by ctx)
// and the state of every subscription. It is safe to call at any time,
// from any goroutine; it does not consume or change anything.
func (b *Bus) Health(ctx context.Context) Health {
	h := Health{Transport: b.kind, TransportErr: b.transport.Health(ctx)}
	select {
	case <-b.running:
		h.Running = !b.isClosed()
	default:
	}
	b.mu.Lock()
	subs := make([]*subscriptionHealth, 0, len(b.health))
	for key, s := range b.health {
		if b.handlers[key] != nil {
			subs = append(subs, s)
		}
	}
	b.mu.Unlock()
	for _, s := range subs {
		h.Subscriptions = append(h.Subscriptions, s.report())
	}
	slices.SortFunc(h.Subscriptions, func(a, b SubscriptionHealth) int {
		return strings.Compare(a.Event+"\x00"+a.Group, b.Event+"\x00"+b.Group)
	})
	return h
}

// Subscription names one subscription of the bus: what it consumes.
type Subscription struct {
	Event  string // the event name
	Group  string // the consumer group
	Topic  string // the event's topic
	Retry  string // the group's retry lane for Topic
	Poison string // the group's poison lane for Topic
}

// Subscriptions lists the bus's subscriptions, sorted by event then group,
// for instrumentation that reads backlogs (package otelbus's gauges) and for
// tools. It includes those registered but not yet started by Run.
func (b *Bus) Subscriptions() []Subscription {
	b.mu.Lock()
	var out []Subscription
	for key, s := range b.health {
		if b.handlers[key] != nil {
			out = append(out, s.sub)
		}
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(a, b Subscription) int {
		return strings.Compare(a.Event+"\x00"+a.Group, b.Event+"\x00"+b.Group)
	})
	return out
}

// subscriptionHealth tracks one subscription's consumers for Health.
type subscriptionHealth struct {
	sub Subscription

	mu        sync.Mutex
	topics    map[string]*consumerCount // consumed topic → its consumers
	lastErr   error
	lastErrAt time.Time
}

type consumerCount struct{ started, ended int }

// track returns the health record of the subscription key, creating it with
// want consumers on each of topics. b.mu is held.
func (b *Bus) track(key string, sub Subscription, topics ...string) *subscriptionHealth {
	s := &subscriptionHealth{sub: sub, topics: map[string]*consumerCount{}}
	for _, t := range topics {
		s.topics[t] = &consumerCount{}
	}
	if b.health == nil {
		b.health = map[string]*subscriptionHealth{}
	}
	b.health[key] = s
	return s
}

// started records that a consumer of topic started, or failed to with err.
func (s *subscriptionHealth) started(topic string, err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr, s.lastErrAt = err, time.Now()
		return
	}
	if c := s.topics[topic]; c != nil {
		c.started++
	}
}

// ended records that a consumer of topic returned.
func (s *subscriptionHealth) ended(topic string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.topics[topic]; c != nil {
		c.ended++
	}
}

// names returns the subscription's event and group, for logs.
func (s *subscriptionHealth) names() (event, group string) {
	if s == nil {
		return "", ""
	}
	return s.sub.Event, s.sub.Group
}

// failed records err, which kept a message from being settled.
func (s *subscriptionHealth) failed(err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.lastErr, s.lastErrAt = err, time.Now()
	s.mu.Unlock()
}

func (s *subscriptionHealth) report() SubscriptionHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := SubscriptionHealth{Event: s.sub.Event, Group: s.sub.Group, Topic: s.sub.Topic,
		Joined: true, Consuming: true, LastErr: s.lastErr, LastErrAt: s.lastErrAt}
	for _, c := range s.topics {
		if c.started == 0 {
			r.Joined = false
		}
		if c.started-c.ended <= 0 {
			r.Consuming = false
		}
	}
	return r
}
