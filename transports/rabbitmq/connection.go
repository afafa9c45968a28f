package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

// connection keeps one AMQP connection open: when the broker closes it or
// the network fails, it reconnects with exponential backoff until closed.
// Users ask for the current connection with get and re-declare what they
// need on it. No method holds mu across a call to the broker: every call
// that waits for the broker is bounded by its caller's context (channel,
// do), so that one stuck call never holds up another.
type connection struct {
	cfg  *Config
	role string // "publish" or "consume", for logs and the connection name

	mu    sync.Mutex
	conn  *amqp.Connection // nil while reconnecting
	gen   uint64           // incremented at each successful dial
	ready chan struct{}    // closed when conn is set

	// While the broker blocks conn (connection.blocked, a resource
	// alarm), blocked is its reason and since when; unblocked is closed
	// when it is not blocked.
	blocked   string
	since     time.Time
	unblocked chan struct{}

	closing chan struct{}
	done    chan struct{} // closed when the watch goroutine returned
	once    sync.Once
}

// dialConnection connects once, failing fast with a redacted error that says
// what to check, then keeps the connection open in the background.
func dialConnection(ctx context.Context, cfg *Config, role string) (*connection, error) {
	c := &connection{cfg: cfg, role: role, ready: make(chan struct{}), unblocked: closedChan(), closing: make(chan struct{}), done: make(chan struct{})}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.set(conn)
	go c.watch(conn)
	return c, nil
}

// dial opens one AMQP connection.
func (c *connection) dial(ctx context.Context) (*amqp.Connection, error) {
	tlsCfg, err := c.cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(c.cfg.ConnectionName + " (" + c.role + ")")
	ac := amqp.Config{
		Heartbeat:       c.cfg.Heartbeat,
		TLSClientConfig: tlsCfg,
		Properties:      props,
		Locale:          "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: c.cfg.ConnectTimeout}
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The AMQP handshake must finish within ConnectTimeout too;
			// amqp091 clears the deadline once it is done.
			if err := conn.SetDeadline(time.Now().Add(c.cfg.ConnectTimeout)); err != nil {
				_ = conn.Close()
				return nil, err
			}
			return conn, nil
		},
	}
	if c.cfg.Auth == AuthExternal {
		ac.SASL = []amqp.Authentication{&amqp.ExternalAuth{}}
	}
	conn, err := amqp.DialConfig(c.cfg.URL.Reveal(), ac)
	if err != nil {
		return nil, connectError(err, c.cfg)
	}
	return conn, nil
}

// connectError explains a failed dial, without the password.
func connectError(err error, cfg *Config) error {
	hint := "is RabbitMQ running and reachable there?"
	var aerr *amqp.Error
	switch {
	case errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused:
		hint = "check the user and password in the URL, and that the user may access the virtual host"
	case errors.Is(err, amqp.ErrCredentials):
		hint = "check the user and password in the URL"
	case errors.Is(err, amqp.ErrVhost):
		hint = "check the virtual host in the URL (the path; / is %2F)"
	case errors.Is(err, amqp.ErrSASL):
		hint = "the broker does not offer the configured auth mechanism (auth \"external\" needs the rabbitmq_auth_mechanism_ssl plugin)"
	case strings.Contains(err.Error(), "certificate"):
		hint = "check tls.ca_file (the CA that signed the broker's certificate) and tls.server_name"
	case strings.Contains(err.Error(), "tls:"):
		hint = "check the TLS settings: tls.ca_file, tls.cert_file, tls.key_file"
	}
	return redactError(fmt.Errorf("connect to RabbitMQ at %s: %w (%s)", cfg.URL.String(), err, hint), cfg.URL.Reveal())
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (c *connection) set(conn *amqp.Connection) {
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 1))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	c.gen++
	close(c.ready)
	go c.watchBlocked(blocks, c.gen)
}

// watchBlocked records and logs the broker's connection.blocked and
// connection.unblocked for the connection of generation gen, until it
// closes. RabbitMQ blocks a connection that publishes while a memory or
// disk alarm is on: it stops reading from it, so nothing sent on it is
// answered until the alarm clears.
func (c *connection) watchBlocked(blocks <-chan amqp.Blocking, gen uint64) {
	for b := range blocks {
		c.mu.Lock()
		if c.gen != gen {
			c.mu.Unlock()
			continue
		}
		switch {
		case b.Active && c.blocked == "":
			c.blocked, c.since = b.Reason, time.Now()
			if c.blocked == "" {
				c.blocked = "no reason given"
			}
			c.unblocked = make(chan struct{})
			c.cfg.Logger.Warn("rabbitmq: the broker blocked the connection (connection.blocked): a resource alarm is on, and publishes wait until it clears or their context ends",
				"role", c.role, "reason", c.blocked, "url", c.cfg.URL.String())
		case !b.Active && c.blocked != "":
			c.cfg.Logger.Info("rabbitmq: the broker unblocked the connection (connection.unblocked): publishing resumes",
				"role", c.role, "reason", c.blocked, "blocked_for", time.Since(c.since).Round(time.Millisecond))
			c.unblockLocked()
		}
		c.mu.Unlock()
	}
}

// unblockLocked clears the blocked state. c.mu is held.
func (c *connection) unblockLocked() {
	if c.blocked != "" {
		c.blocked = ""
		close(c.unblocked)
	}
}

// ErrBlocked is wrapped by the errors of a Publish, PublishDelayed or
// Health that found the broker blocking the transport's connection
// (connection.blocked): RabbitMQ does that while a memory or disk alarm is
// on, and reads nothing more from the connection until it clears. The
// error names the broker's reason ("low on memory", "low on disk").
var ErrBlocked = errors.New("rabbitmq: the broker blocks the connection for a resource alarm")

// blockedError describes the block, or is nil when the broker does not
// block the connection.
func (c *connection) blockedError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockedErrorLocked()
}

func (c *connection) blockedErrorLocked() error {
	if c.blocked == "" {
		return nil
	}
	return fmt.Errorf("%w: %s connection to %s blocked for %v, reason %q (free memory or disk on the broker, or check its vm_memory_high_watermark and disk_free_limit; the block lifts when the alarm clears)",
		ErrBlocked, c.role, c.cfg.URL.String(), time.Since(c.since).Round(time.Millisecond), c.blocked)
}

// withBlocked returns err, wrapping the block's error too while the broker
// blocks the connection: a wait that ended then most likely ended because
// of it.
func (c *connection) withBlocked(err error) error {
	if berr := c.blockedError(); berr != nil {
		return fmt.Errorf("%w: %w", berr, err)
	}
	return err
}

// waitUnblocked returns once the broker does not block the connection, or
// with an error wrapping ErrBlocked and ctx's error when ctx ends first.
func (c *connection) waitUnblocked(ctx context.Context) error {
	for {
		c.mu.Lock()
		err, unblocked := c.blockedErrorLocked(), c.unblocked
		c.mu.Unlock()
		if err == nil {
			return nil
		}
		select {
		case <-unblocked:
		case <-c.closing:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", c.blockedError(), ctx.Err())
		}
	}
}

// watch reconnects whenever the connection closes, until c is closed.
func (c *connection) watch(conn *amqp.Connection) {
	defer close(c.done)
	for {
		lost := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-c.closing:
			return
		case err := <-lost:
			c.mu.Lock()
			c.conn = nil
			c.ready = make(chan struct{})
			c.unblockLocked() // the next connection starts unblocked
			c.mu.Unlock()
			c.cfg.Logger.Warn("rabbitmq: connection lost, reconnecting", "role", c.role, "error", redactError(amqpErr(err), c.cfg.URL.Reveal()))
		}
		var ok bool
		if conn, ok = c.reconnect(); !ok {
			return
		}
		c.set(conn)
		c.cfg.Logger.Info("rabbitmq: reconnected", "role", c.role, "url", c.cfg.URL.String())
	}
}

func amqpErr(e *amqp.Error) error {
	if e == nil {
		return errors.New("connection closed")
	}
	return e
}

// reconnect dials until it succeeds, waiting between attempts from
// Config.ReconnectInitial, doubling with 20% jitter up to
// Config.ReconnectMax; ok is false when c closed.
func (c *connection) reconnect() (conn *amqp.Connection, ok bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := backoff.Retry(ctx, func() (*amqp.Connection, error) { return c.dial(ctx) },
		backoff.WithBackOff(reconnectBackoff(c.cfg)),
		backoff.WithMaxElapsedTime(0), // until it works or c closes
		backoff.WithNotify(func(err error, wait time.Duration) {
			c.cfg.Logger.Debug("rabbitmq: reconnect failed", "role", c.role, "error", err, "retry_in", wait)
		}))
	if err != nil {
		return nil, false // only c closing ends the retries
	}
	select {
	case <-c.closing:
		_ = conn.CloseDeadline(time.Now().Add(closeWait))
		return nil, false
	default:
		return conn, true
	}
}

// reconnectBackoff is the backoff between attempts to reconnect, and
// between a consumer's attempts to start over.
func reconnectBackoff(cfg *Config) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     cfg.ReconnectInitial,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         cfg.ReconnectMax,
	}
}

// get returns the open connection and its generation, waiting while
// reconnecting until ctx is done or c closes.
func (c *connection) get(ctx context.Context) (*amqp.Connection, uint64, error) {
	for {
		c.mu.Lock()
		conn, gen, ready := c.conn, c.gen, c.ready
		c.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn, gen, nil
		}
		if conn != nil {
			// Closed but watch has not noticed yet: wait for it to.
			select {
			case <-c.closing:
				return nil, 0, ErrClosed
			case <-ctx.Done():
				return nil, 0, fmt.Errorf("rabbitmq: waiting for the connection to %s: %w", c.cfg.URL.String(), ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		select {
		case <-ready:
		case <-c.closing:
			return nil, 0, ErrClosed
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("rabbitmq: broker at %s unreachable, still reconnecting: %w", c.cfg.URL.String(), ctx.Err())
		}
	}
}

// channel opens a channel on the current connection and runs setup on it
// (when not nil), bounded by ctx: amqp091's Channel and the RPCs of setup
// have no timeout, and the broker answers none of them while the network
// drops its bytes or a resource alarm blocks the connection. They run on a
// goroutine of their own; when ctx ends first, that goroutine closes the
// channel if it opens after all. Nothing opened or declared on a channel
// stores a message, so these errors never mean one was sent.
func (c *connection) channel(ctx context.Context, setup func(*amqp.Channel) error) (*amqp.Channel, uint64, error) {
	conn, gen, err := c.get(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := c.waitUnblocked(ctx); err != nil {
		return nil, 0, fmt.Errorf("open channel: %w", err)
	}
	type opened struct {
		ch  *amqp.Channel
		err error
	}
	res := make(chan opened, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			res <- opened{nil, fmt.Errorf("open channel: %w", err)}
			return
		}
		if setup != nil {
			if err := setup(ch); err != nil {
				res <- opened{nil, err}
				_ = ch.Close()
				return
			}
		}
		res <- opened{ch, nil}
	}()
	abandon := func() {
		go func() {
			if o := <-res; o.ch != nil {
				_ = o.ch.Close()
			}
		}()
	}
	select {
	case o := <-res:
		return o.ch, gen, o.err
	case <-c.closing:
		abandon()
		return nil, 0, ErrClosed
	case <-ctx.Done():
		abandon()
		return nil, 0, fmt.Errorf("no answer from the broker at %s to open a channel: %w", c.cfg.URL.String(), c.withBlocked(ctx.Err()))
	}
}

// do runs f on a channel of its own, bounded by ctx (see channel), and
// closes the channel; it returns the generation of the connection f ran
// on.
func (c *connection) do(ctx context.Context, f func(*amqp.Channel) error) (uint64, error) {
	ch, gen, err := c.channel(ctx, f)
	if err != nil {
		return 0, err
	}
	closeChannel(ch)
	return gen, nil
}

// closeChannel closes ch in the background: channel.close waits for the
// broker's answer, which may never come (see channel). The goroutine ends
// with the answer or the connection.
func closeChannel(ch *amqp.Channel) {
	go func() { _ = ch.Close() }()
}

// closeWait bounds the wait for the broker's answer to connection.close.
const closeWait = 2 * time.Second

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serverVersion is the version the broker announced on the current
// connection (connection.start's server properties), or "".
func (c *connection) serverVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return ""
	}
	v, _ := c.conn.Properties["version"].(string)
	return v
}

// close stops reconnecting and closes the connection. It is idempotent.
func (c *connection) close() error {
	var err error
	c.once.Do(func() {
		close(c.closing)
		<-c.done
		c.mu.Lock()
		conn := c.conn
		c.conn = nil
		c.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			// Bounded: a broker that stopped answering must not hold up
			// Close. The connection is closed on this side either way; a
			// close-ok that did not come in time is no failure to report.
			deadline := time.Now().Add(closeWait)
			cerr := conn.CloseDeadline(deadline)
			switch {
			case cerr == nil || errors.Is(cerr, amqp.ErrClosed):
			case isTimeout(cerr) || !time.Now().Before(deadline):
				c.cfg.Logger.Debug("rabbitmq: no answer from the broker to connection.close", "role", c.role, "error", redactError(cerr, c.cfg.URL.Reveal()))
			default:
				err = redactError(cerr, c.cfg.URL.Reveal())
			}
		}
	})
	return err
}
