package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// connection keeps one AMQP connection open: when the broker closes it or
// the network fails, it reconnects with exponential backoff until closed.
// Users ask for the current connection with get and re-declare what they
// need on it.
type connection struct {
	cfg  *Config
	role string // "publish" or "consume", for logs and the connection name

	mu    sync.Mutex
	conn  *amqp.Connection // nil while reconnecting
	gen   uint64           // incremented at each successful dial
	ready chan struct{}    // closed when conn is set

	closing chan struct{}
	done    chan struct{} // closed when the watch goroutine returned
	once    sync.Once
}

// dialConnection connects once, failing fast with a redacted error that says
// what to check, then keeps the connection open in the background.
func dialConnection(ctx context.Context, cfg *Config, role string) (*connection, error) {
	c := &connection{cfg: cfg, role: role, ready: make(chan struct{}), closing: make(chan struct{}), done: make(chan struct{})}
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

func (c *connection) set(conn *amqp.Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	c.gen++
	close(c.ready)
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

// reconnect dials with exponential backoff; ok is false when c closed.
func (c *connection) reconnect() (conn *amqp.Connection, ok bool) {
	wait := c.cfg.ReconnectInitial
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-c.closing:
			return nil, false
		case <-time.After(wait):
		}
		conn, err := c.dial(ctx)
		if err == nil {
			select {
			case <-c.closing:
				_ = conn.Close()
				return nil, false
			default:
				return conn, true
			}
		}
		c.cfg.Logger.Debug("rabbitmq: reconnect failed", "role", c.role, "error", err, "retry_in", wait)
		wait = min(wait*2, c.cfg.ReconnectMax)
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

// channel opens a channel on the current connection.
func (c *connection) channel(ctx context.Context) (*amqp.Channel, uint64, error) {
	conn, gen, err := c.get(ctx)
	if err != nil {
		return nil, 0, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, 0, fmt.Errorf("rabbitmq: open channel: %w", err)
	}
	return ch, gen, nil
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
			if cerr := conn.Close(); cerr != nil && !errors.Is(cerr, amqp.ErrClosed) {
				err = redactError(cerr, c.cfg.URL.Reveal())
			}
		}
	})
	return err
}
