package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports"
)

// Kind is the name the Redis transport registers under.
const Kind = "redis"

func init() {
	transports.Register(Kind, transports.Configured(configFor,
		func(c *Config) error { c.setDefaults(); return c.Validate() },
		func(ctx context.Context, c Config) (transports.Transport, error) { return New(ctx, c) }))
}

// configFor is the Config the registry opens for p: its section, with the
// service and logger of p.
func configFor(p transports.OpenParams) (Config, error) {
	var cfg Config
	if err := p.DecodeSection(&cfg); err != nil {
		return cfg, err
	}
	cfg.Service = p.Service
	cfg.Logger = p.Logger
	return cfg, nil
}

// Transport is a Redis Streams connection. Create it with New. It is safe for
// concurrent use.
type Transport struct {
	cfg     Config
	client  goredis.UniversalClient
	secrets []string

	closed  chan struct{}
	ctx     context.Context // cancelled by Close, after the subscriptions stopped
	cancel  context.CancelFunc
	once    sync.Once
	batcher *batcher // shares pipelines between concurrent publishers

	lastDialErr lastDialError // the client's last dial error, for goRedisLog

	liveOnce sync.Once      // starts keepAlive
	liveWG   sync.WaitGroup // keepAlive

	mu          sync.Mutex
	provisioned map[string]map[string]bool
	subscribers map[*subscriber]struct{}
	movers      map[string]*mover // by topic
	lost        *GroupLostError
}

var (
	_ transports.Transport        = (*Transport)(nil)
	_ transports.GroupProvisioner = (*Transport)(nil)
	_ transports.GroupRemover     = (*Transport)(nil)
	_ transports.Delayer          = (*Transport)(nil)
	_ transports.Inspector        = (*Transport)(nil)
	_ transports.Browser          = (*Transport)(nil)
)

// New connects to Redis as cfg says and checks the connection with PING. It
// returns every configuration problem at once, and, when PING fails, an
// error that says what to check: whether Redis runs and its address (for a
// refused or timed-out connection), the username and password (for an
// authentication error), or the TLS settings (for a TLS error).
//
// go-redis logs failed dials itself, to a logger it keeps for the whole
// process (goredis.SetLogger), stderr by default. The first transport
// created replaces it, once per process, with one that sends go-redis's
// report of a transport's failed dial to that transport's Logger, as a
// warning, and any other go-redis message to slog.Default(); later
// transports leave it be. To send go-redis's log elsewhere, call
// goredis.SetLogger after New.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis transport: invalid config: %w", err)
	}
	client, err := cfg.client()
	if err != nil {
		return nil, fmt.Errorf("redis transport: %w", err)
	}
	t := newTransport(cfg, client)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = t.Close()
		return nil, t.redact(connectError(&cfg, err))
	}
	return t, nil
}

// NewWithClient returns a transport over an existing go-redis client, for
// Sentinel setups or options Config does not offer. Close closes the
// client. Config's connection fields are ignored. It adds a hook to client
// so that go-redis's log of its failed dials goes to Config.Logger (see
// New). Set the client's ContextTimeoutEnabled, as New does, so that a
// publish's deadline bounds its socket reads and writes (see the package
// documentation, "Publishing").
func NewWithClient(client goredis.UniversalClient, cfg Config) (*Transport, error) {
	if client == nil {
		return nil, errors.New("redis transport: nil client (build one with goredis.NewClient or NewUniversalClient)")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis transport: invalid config: %w", err)
	}
	return newTransport(cfg, client), nil
}

func newTransport(cfg Config, client goredis.UniversalClient) *Transport {
	routeGoRedisLog()
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		ctx:         ctx,
		cancel:      cancel,
		cfg:         cfg,
		client:      client,
		secrets:     cfg.secrets(),
		closed:      make(chan struct{}),
		batcher:     newBatcher(ctx, client),
		provisioned: map[string]map[string]bool{},
		subscribers: map[*subscriber]struct{}{},
		movers:      map[string]*mover{},
	}
	client.AddHook(dialHook{t})
	dialing.Store(t, struct{}{})
	return t
}

// Client returns the go-redis client the transport uses.
func (t *Transport) Client() goredis.UniversalClient { return t.client }

// Stream returns the stream key of topic: the key prefix and the topic.
func (t *Transport) Stream(topic string) string { return t.cfg.KeyPrefix + topic }

// Publisher returns a publisher whose Publish returns once Redis stored every
// message; concurrent publishers share pipelines.
func (t *Transport) Publisher() (message.Publisher, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	return &publisher{t: t, closed: make(chan struct{})}, nil
}

// Subscriber returns a new subscriber consuming as the Redis consumer group
// named group.
func (t *Transport) Subscriber(group string) (message.Subscriber, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	if group == "" || strings.ContainsAny(group, " \t\r\n") {
		return nil, fmt.Errorf("redis transport: consumer group name %q must be non-empty without white space", group)
	}
	s := &subscriber{t: t, group: group, closed: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	t.subscribers[s] = struct{}{}
	return s, nil
}

// Features reports persistent, per-key ordered delivery (see the package
// documentation for what reorders), native delays of any length
// (PublishDelayed) and Config.MaxMessageBytes.
func (t *Transport) Features() transports.Features {
	return transports.Features{Persistent: true, OrderedPerKey: true, NativeDelay: true, MaxMessageBytes: t.cfg.MaxMessageBytes}
}

// Health returns nil when Redis answers PING and no consumer group was lost
// in the last Config.LossReportWindow; a *GroupLostError when one was.
func (t *Transport) Health(ctx context.Context) error {
	if t.isClosed() {
		return ErrClosed
	}
	if err := t.client.Ping(ctx).Err(); err != nil {
		return t.redact(fmt.Errorf("redis transport: PING %s: %w", t.cfg.target(), err))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lost != nil && time.Since(t.lost.At) < t.cfg.LossReportWindow {
		return t.lost
	}
	return nil
}

// ProvisionGroup creates group on topic's stream, reading from the stream's
// start, so that every message already there or published later is kept for
// it. It succeeds if the group exists.
func (t *Transport) ProvisionGroup(ctx context.Context, topic, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	return t.createGroup(ctx, t.Stream(topic), group)
}

// RemoveGroup destroys group on topic's stream (XGROUP DESTROY) with its
// pending entries, and stops recreating it after a loss. Close the group's
// subscriptions first: a subscription still reading recreates the group.
// Removing a group that does not exist succeeds.
func (t *Transport) RemoveGroup(ctx context.Context, topic, group string) error {
	if t.isClosed() {
		return ErrClosed
	}
	stream := t.Stream(topic)
	t.mu.Lock()
	delete(t.provisioned[stream], group)
	t.mu.Unlock()
	if err := t.client.XGroupDestroy(ctx, stream, group).Err(); err != nil && !strings.Contains(err.Error(), "requires the key to exist") {
		return t.redact(fmt.Errorf("redis transport: XGROUP DESTROY %s %s: %w", stream, group, err))
	}
	return nil
}

// Close stops every subscription, waits for their acks to be flushed and
// closes the client. It is idempotent.
func (t *Transport) Close() error {
	var err error
	t.once.Do(func() {
		close(t.closed)
		t.mu.Lock()
		subs := make([]*subscriber, 0, len(t.subscribers))
		for s := range t.subscribers {
			subs = append(subs, s)
		}
		t.mu.Unlock()
		for _, s := range subs {
			_ = s.Close()
		}
		t.cancel()
		t.liveWG.Wait()
		t.batcher.close()
		err = t.redact(t.client.Close())
		dialing.Delete(t)
	})
	return err
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

// createGroup runs XGROUP CREATE stream group 0 MKSTREAM, ignoring BUSYGROUP,
// and remembers the group for recreation after a loss. Redis at maxmemory
// refuses XGROUP CREATE even for a group that exists (OOM): createGroup then
// looks the group up (XINFO GROUPS, which Redis allows), so that consumers
// of existing groups start and drain.
func (t *Transport) createGroup(ctx context.Context, stream, group string) error {
	err := t.client.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if isOOM(err) {
		if ok, lookErr := t.groupExists(ctx, stream, group); lookErr == nil && ok {
			err = nil
		}
	}
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return t.redact(fmt.Errorf("redis transport: create consumer group %s on %s: %w%s", group, stream, err, oomHint(err)))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.provisioned[stream] == nil {
		t.provisioned[stream] = map[string]bool{}
	}
	t.provisioned[stream][group] = true
	return nil
}

// groupLost records the loss of group on stream, and recreates it and every
// group provisioned on stream through this transport.
func (t *Transport) groupLost(ctx context.Context, stream, group string, cause error) {
	loss := &GroupLostError{Stream: stream, Group: group, At: time.Now(), Err: t.redact(cause)}
	t.cfg.Logger.Error("redis transport: consumer group lost; recreating it", "stream", stream, "group", group, "err", loss.Err)
	t.mu.Lock()
	t.lost = loss
	groups := []string{group}
	for g := range t.provisioned[stream] {
		if g != group {
			groups = append(groups, g)
		}
	}
	t.mu.Unlock()
	for _, g := range groups {
		if err := t.createGroup(ctx, stream, g); err != nil {
			t.cfg.Logger.Error("redis transport: recreate consumer group", "stream", stream, "group", g, "err", err)
		}
	}
}

// consumersInUse holds the consumer names subscriptions of this process
// use, across transports, so that two transports with the same Consumer base
// never share a name.
var consumersInUse = struct {
	sync.Mutex
	names map[consumerKey]bool
}{names: map[consumerKey]bool{}}

type consumerKey struct{ stream, group, name string }

// acquireConsumer returns the name "<Consumer>-<n>" with the lowest n free
// for stream and group in this process, and marks it in use.
func (t *Transport) acquireConsumer(stream, group string) string {
	consumersInUse.Lock()
	defer consumersInUse.Unlock()
	for i := 0; ; i++ {
		k := consumerKey{stream, group, fmt.Sprintf("%s-%d", t.cfg.Consumer, i)}
		if !consumersInUse.names[k] {
			consumersInUse.names[k] = true
			return k.name
		}
	}
}

func (t *Transport) releaseConsumer(stream, group, name string) {
	consumersInUse.Lock()
	defer consumersInUse.Unlock()
	delete(consumersInUse.names, consumerKey{stream, group, name})
}

func (t *Transport) forget(s *subscriber) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subscribers, s)
}

// groupExists reports whether stream has the consumer group group.
func (t *Transport) groupExists(ctx context.Context, stream, group string) (bool, error) {
	groups, err := t.client.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return false, err
	}
	for _, g := range groups {
		if g.Name == group {
			return true, nil
		}
	}
	return false, nil
}

// isNoGroup reports whether err is Redis's NOGROUP: the group or the stream
// is gone.
func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}
