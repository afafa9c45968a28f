package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// Kind is the name the memory transport registers under.
const Kind = "memory"

// ErrClosed is returned when publishing or subscribing through a closed
// transport, publisher or subscriber.
var ErrClosed = errors.New("memory transport: closed")

func init() {
	load := func(p transports.OpenParams) (Config, error) {
		var cfg Config
		err := p.DecodeSection(&cfg)
		return cfg, err
	}
	transports.Register(Kind, transports.Configured(load, func(c *Config) error { return c.validate() },
		func(_ context.Context, c Config) (transports.Transport, error) {
			if err := c.validate(); err != nil {
				return nil, err
			}
			return New(c), nil
		}))
}

func (c Config) validate() error {
	if c.MaxMessageBytes < 0 {
		return fmt.Errorf("transport.memory.max_message_bytes: %d is negative (0 means no limit)", c.MaxMessageBytes)
	}
	return nil
}

// Config configures the memory transport. Its one YAML setting is
// max_message_bytes (transport.memory.max_message_bytes).
type Config struct {
	// Clock is the time source of the timer heap that keeps delayed
	// messages (PublishDelayed: delayed redelivery tiers and scheduled
	// publish). Default: nil, real time. Tests set a fake clock (package
	// bustest's) to make delayed messages due without sleeping. Not
	// settable from YAML.
	Clock Clock `yaml:"-"`

	// MaxMessageBytes is the largest message Publish accepts, counted as
	// transports.MessageSize counts it; a larger one is refused with a
	// *transports.MessageTooLargeError. Default: 0, no limit. Set it to a
	// broker's limit to find oversized events in tests before they reach
	// the broker.
	MaxMessageBytes int `yaml:"max_message_bytes"`
}

// Transport is an in-process broker. The zero value is not usable; call New.
// It is safe for concurrent use.
type Transport struct {
	mu     sync.Mutex
	topics map[string]map[string]*queue // topic → group → queue
	closed chan struct{}
	once   sync.Once

	// The timer heap of PublishDelayed and its timer, guarded by mu.
	clock     Clock
	maxBytes  int
	delays    delayHeap
	delaySeq  uint64
	timerStop func() bool // stops the armed timer; nil when none is armed
	timerDue  time.Time   // the due time the armed timer fires at
	timerGen  uint64      // counts the timers armed, so a stale one is told apart
}

var (
	_ transports.Transport        = (*Transport)(nil)
	_ transports.GroupProvisioner = (*Transport)(nil)
	_ transports.GroupRemover     = (*Transport)(nil)
	_ transports.Delayer          = (*Transport)(nil)
	_ transports.Inspector        = (*Transport)(nil)
	_ transports.Browser          = (*Transport)(nil)
)

// New returns an empty in-process broker.
func New(cfg Config) *Transport {
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	return &Transport{
		topics:   map[string]map[string]*queue{},
		closed:   make(chan struct{}),
		clock:    clock,
		maxBytes: max(cfg.MaxMessageBytes, 0),
	}
}

// Publisher returns a publisher onto this transport. Publish returns once the
// message is in the queue of every group provisioned on the topic.
func (t *Transport) Publisher() (message.Publisher, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	return &publisher{t: t, closed: make(chan struct{})}, nil
}

// Subscriber returns a new subscriber consuming as group.
func (t *Transport) Subscriber(group string) (message.Subscriber, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	if group == "" {
		return nil, errors.New("memory transport: empty consumer group name")
	}
	return &subscriber{t: t, group: group, closed: make(chan struct{})}, nil
}

// Features reports ordered, non-persistent delivery, and delays of any
// length kept in the transport's timer heap.
func (t *Transport) Features() transports.Features {
	return transports.Features{OrderedPerKey: true, NativeDelay: true, MaxMessageBytes: t.maxBytes}
}

// Health returns ErrClosed after Close, nil before.
func (t *Transport) Health(context.Context) error {
	if t.isClosed() {
		return ErrClosed
	}
	return nil
}

// ProvisionGroup creates the group's queue on topic, so that messages
// published from now on are kept for the group even before it subscribes.
func (t *Transport) ProvisionGroup(_ context.Context, topic, group string) error {
	_, err := t.queue(topic, group)
	return err
}

// RemoveGroup deletes the group's queue on topic with the messages it
// holds; the group's subscriptions on topic stop receiving new messages.
func (t *Transport) RemoveGroup(_ context.Context, topic, group string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.topics[topic], group)
	return nil
}

// Pending returns how many messages wait in the group's queue on topic, not
// counting those delivered and not yet acked.
func (t *Transport) Pending(topic, group string) int {
	t.mu.Lock()
	q := t.topics[topic][group]
	t.mu.Unlock()
	if q == nil {
		return 0
	}
	return q.len()
}

// Close stops every subscription and drops all queued messages. It is
// idempotent.
func (t *Transport) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		close(t.closed)
		t.topics = map[string]map[string]*queue{}
		t.delays = nil
		if t.timerStop != nil {
			t.timerStop()
			t.timerStop = nil
		}
		t.mu.Unlock()
	})
	return nil
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

// queue returns the group's queue on topic, creating it if needed.
func (t *Transport) queue(topic, group string) (*queue, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	groups := t.topics[topic]
	if groups == nil {
		groups = map[string]*queue{}
		t.topics[topic] = groups
	}
	q := groups[group]
	if q == nil {
		q = newQueue()
		groups[group] = q
	}
	return q, nil
}

func (t *Transport) publish(topic string, msgs []*message.Message) error {
	if err := t.refuse(msgs); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return ErrClosed
	}
	for _, q := range t.topics[topic] {
		q.push(msgs)
	}
	return nil
}

// Groups returns the groups provisioned on topic, sorted.
func (t *Transport) Groups(_ context.Context, topic string) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	groups := make([]string, 0, len(t.topics[topic]))
	for g := range t.topics[topic] {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	return groups, nil
}

// Backlog reports the messages of group's queue on topic that wait or are in
// flight, plus the delayed publishes to topic that wait in the timer heap
// (each of which every group will receive), and the ce_time of the oldest
// waiting message.
func (t *Transport) Backlog(_ context.Context, topic, group string) (transports.Backlog, error) {
	t.mu.Lock()
	if t.isClosed() {
		t.mu.Unlock()
		return transports.Backlog{}, ErrClosed
	}
	q := t.topics[topic][group]
	var delayed int64
	if q != nil {
		for _, d := range t.delays {
			if d.topic == topic {
				delayed += int64(len(d.msgs))
			}
		}
	}
	t.mu.Unlock()
	if q == nil {
		return transports.Backlog{}, nil
	}
	n, oldest := q.backlog()
	b := transports.Backlog{Messages: int64(n) + delayed}
	if oldest != nil {
		b.Oldest, _ = time.Parse(time.RFC3339Nano, oldest.Metadata.Get(wire.MetaTime))
	}
	return b, nil
}

// Browse returns copies of the messages waiting in group's queue on topic,
// oldest first, without taking them; messages in flight are not included.
func (t *Transport) Browse(_ context.Context, topic, group string, limit int) ([]*message.Message, error) {
	t.mu.Lock()
	if t.isClosed() {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	q := t.topics[topic][group]
	t.mu.Unlock()
	if q == nil {
		return nil, nil
	}
	return q.browse(limit), nil
}

// refuse returns why msgs must not be published: a message's context is
// done, or a message is over the size limit.
func (t *Transport) refuse(msgs []*message.Message) error {
	for _, m := range msgs {
		if err := m.Context().Err(); err != nil {
			return err
		}
	}
	return transports.CheckSize(t.maxBytes, "transport.memory.max_message_bytes", msgs...)
}
