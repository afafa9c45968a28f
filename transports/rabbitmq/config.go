package rabbitmq

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/busline/busline/transports"
)

// EnvURL is the environment variable read for the broker URL when
// Config.URL is empty.
const EnvURL = "BUSLINE_RABBITMQ_URL"

// DefaultURL is the broker URL used when neither Config.URL nor EnvURL is
// set: the guest account of a RabbitMQ on the local machine.
const DefaultURL = "amqp://guest:guest@localhost:5672/"

// Queue types accepted by Config.QueueType.
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// Authentication mechanisms accepted by Config.Auth.
const (
	AuthPlain    = "plain"
	AuthExternal = "external"
)

// Config configures the RabbitMQ transport. It is the YAML section
// transport.rabbitmq. The zero value is valid: every field has a default.
// Printing a Config (%v, %+v, %#v) never shows the password.
type Config struct {
	// URL is the broker's AMQP URI, amqp:// or amqps://, with the user,
	// password and virtual host: amqp://user:password@host:5672/vhost.
	// Default: $BUSLINE_RABBITMQ_URL, else amqp://guest:guest@localhost:5672/.
	URL transports.SecretURL `yaml:"url"`

	// TLS configures amqps:// connections. Ignored for amqp:// URLs unless a
	// field is set, which is then an error.
	TLS TLSConfig `yaml:"tls"`

	// Auth is the SASL mechanism: "plain" (user and password from URL) or
	// "external" (the TLS client certificate; needs the broker's
	// rabbitmq_auth_mechanism_ssl plugin). Default: "plain".
	Auth string `yaml:"auth"`

	// Heartbeat is the AMQP heartbeat interval: a dead broker or network is
	// noticed after about two of them. Default: 10s.
	Heartbeat time.Duration `yaml:"heartbeat"`

	// ConnectTimeout bounds the TCP and TLS handshake of each connection
	// attempt. Default: 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`

	// ReconnectInitial is the first wait between attempts to reconnect
	// after the connection is lost (the first attempt is at once); waits
	// double, with 20% jitter, up to ReconnectMax. A consumer whose channel
	// failed starts over after the same waits. Default: 100ms.
	ReconnectInitial time.Duration `yaml:"reconnect_initial"`

	// ReconnectMax caps the wait between reconnection attempts. Default: 5s.
	ReconnectMax time.Duration `yaml:"reconnect_max"`

	// QueueType is the type of the group queues the transport declares:
	// "classic" or "quorum" (replicated, with a delivery count). It must
	// match existing queues. Default: "classic".
	QueueType string `yaml:"queue_type"`

	// HeaderPrefix is the prefix of the CloudEvents attributes in the AMQP
	// headers busline writes: "cloudEvents:" (cloudEvents:id, the
	// CloudEvents AMQP binding's), "cloudEvents_", "ce-" (knative
	// eventing-rabbitmq's) or "ce_" (what busline wrote before this
	// setting: keep it while consumers read only ce_ headers). busline
	// reads all four whatever this says. Default: "cloudEvents:".
	HeaderPrefix string `yaml:"header_prefix"`

	// QueueExpires makes RabbitMQ delete a group queue that has had no
	// consumer for this long (x-expires), messages included: for short-lived
	// groups and test runs. It must match existing queues. Default: 0, queues
	// are kept forever.
	QueueExpires time.Duration `yaml:"queue_expires"`

	// Prefetch is how many unacked messages RabbitMQ sends ahead to each
	// consumer (basic.qos). 1 keeps strict order across redeliveries; more
	// hides the network round trip. Default: 32.
	Prefetch int `yaml:"prefetch"`

	// PublishChannels is how many AMQP channels publishers share. Each
	// carries any number of concurrent publishes with asynchronous confirms.
	// Default: 4.
	PublishChannels int `yaml:"publish_channels"`

	// PublishTimeout bounds one Publish, as does the message's context
	// (whichever ends first): waiting for a connection while the broker is
	// unreachable, for a channel, for a resource alarm to clear, and for
	// the broker's confirm. Default: 30s.
	PublishTimeout time.Duration `yaml:"publish_timeout"`

	// MaxMessageBytes is the largest message Publish and PublishDelayed
	// accept, as transports.MessageSize counts it (payload plus metadata):
	// a larger one is refused before anything is sent, with a
	// *transports.MessageTooLargeError (Features().MaxMessageBytes reports
	// it). Keep it at or below the broker's max_message_size
	// (rabbitmq.conf), which RabbitMQ checks against the body alone: a
	// message the broker refuses all the same fails with the broker's
	// reason, wrapping transports.ErrTooLarge. Default: the default
	// max_message_size of the broker's version, read when connecting:
	// 16 MiB (MaxMessageBytes4) on RabbitMQ 4.x, 128 MiB
	// (MaxMessageBytes3) on 3.8 to 3.13.
	MaxMessageBytes int `yaml:"max_message_bytes"`

	// DisableConfirms makes Publish return as soon as the message is written
	// to the socket, without waiting for RabbitMQ to confirm it. Messages can
	// then be lost. Default: false (confirms on).
	DisableConfirms bool `yaml:"disable_confirms"`

	// NackDelay is how long a nacked message is held before it goes back to
	// the queue, so that a failing message is not redelivered in a hot loop.
	// It doubles with each consecutive nack of the same message, up to
	// NackDelayMax. The consumer goes on with other messages meanwhile.
	// Default: 100ms.
	NackDelay time.Duration `yaml:"nack_delay"`

	// NackDelayMax caps NackDelay's doubling. Default: 5s.
	NackDelayMax time.Duration `yaml:"nack_delay_max"`

	// ConsumerTimeout is the broker's consumer_timeout (rabbitmq.conf): how
	// long RabbitMQ lets a delivery stay unacked before it closes the
	// channel and redelivers it. busline cannot read it from the broker:
	// set it to the broker's value. It is reported by
	// Transport.ConsumerTimeout, so that per-attempt timeouts can be
	// checked against it, and named in the warnings and poison records of
	// handlers that outlast it. Default: 30m, RabbitMQ's default.
	ConsumerTimeout time.Duration `yaml:"consumer_timeout"`

	// TimeoutAttempts is how many deliveries of one message may end in the
	// broker's consumer_timeout (the handler still running when RabbitMQ
	// closed the channel) before the next delivery goes to the group's
	// poison lane, reason "timeout", instead of to the handler. Counted per
	// consumer process. Default: 3, the bus's default retry attempts.
	TimeoutAttempts int `yaml:"timeout_attempts"`

	// ConnectionName names the connections in RabbitMQ's management UI.
	// Default: the service name given to transports.Open, else "busline".
	ConnectionName string `yaml:"connection_name"`

	// Logger receives the transport's logs. Not settable from YAML.
	// Default: slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// The default max_message_size of RabbitMQ's versions, the default of
// Config.MaxMessageBytes.
const (
	MaxMessageBytes3 = 128 << 20 // RabbitMQ 3.8 to 3.13: 128 MiB
	MaxMessageBytes4 = 16 << 20  // RabbitMQ 4.0 and later: 16 MiB
)

// maxMessageBytesHard is the largest max_message_size RabbitMQ accepts:
// 512 MiB.
const maxMessageBytesHard = 512 << 20

// maxMessageBytesHint is how MessageTooLargeError says the limit is set.
const maxMessageBytesHint = "transport.rabbitmq.max_message_bytes"

// defaultMaxMessageBytes is the default max_message_size of the broker
// whose connection.start said it runs version (RabbitMQ 3.x: "3.10.8").
func defaultMaxMessageBytes(version string) int {
	major, _, _ := strings.Cut(version, ".")
	if n, err := strconv.Atoi(major); err == nil && n >= 4 {
		return MaxMessageBytes4
	}
	return MaxMessageBytes3
}

// TLSConfig configures TLS for amqps:// URLs, as on every broker
// transport; file paths are PEM files, and Config, when set, is used as it
// is. ServerName defaults to the URL's host. Setting it with an amqp:// URL
// is an error: the URL's scheme turns TLS on.
type TLSConfig = transports.TLSConfig

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = transports.SecretURL(os.Getenv(EnvURL))
	}
	if c.URL == "" {
		c.URL = transports.SecretURL(DefaultURL)
	}
	if c.Auth == "" {
		c.Auth = AuthPlain
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 10 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ReconnectInitial == 0 {
		c.ReconnectInitial = 100 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 5 * time.Second
	}
	if c.QueueType == "" {
		c.QueueType = QueueClassic
	}
	if c.HeaderPrefix == "" {
		c.HeaderPrefix = PrefixAMQP
	}
	if c.Prefetch == 0 {
		c.Prefetch = 32
	}
	if c.PublishChannels == 0 {
		c.PublishChannels = 4
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.NackDelay == 0 {
		c.NackDelay = 100 * time.Millisecond
	}
	if c.NackDelayMax == 0 {
		c.NackDelayMax = 5 * time.Second
	}
	if c.ConsumerTimeout == 0 {
		c.ConsumerTimeout = 30 * time.Minute
	}
	if c.TimeoutAttempts == 0 {
		c.TimeoutAttempts = 3
	}
	if c.ConnectionName == "" {
		c.ConnectionName = "busline"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of c at once, each saying how to fix it.
// It checks the values as given: call it after the defaults were applied,
// as New does.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL.Reveal())
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("url %s is not a valid URL (want amqp://user:password@host:5672/vhost; percent-encode reserved characters in the password)", c.URL))
	case u.Scheme != "amqp" && u.Scheme != "amqps":
		errs = append(errs, fmt.Errorf("url %s: scheme must be amqp or amqps", c.URL))
	case u.Scheme == "amqp" && c.TLS.On():
		errs = append(errs, fmt.Errorf("tls is set but url %s is not amqps:// (use amqps:// to connect with TLS)", c.URL))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls.cert_file and tls.key_file must be set together"))
	}
	switch c.Auth {
	case AuthPlain:
	case AuthExternal:
		if c.TLS.CertFile == "" {
			errs = append(errs, errors.New(`auth "external" authenticates with the TLS client certificate: set tls.cert_file and tls.key_file`))
		}
	default:
		errs = append(errs, fmt.Errorf("auth %q is not %q or %q", c.Auth, AuthPlain, AuthExternal))
	}
	if c.QueueType != QueueClassic && c.QueueType != QueueQuorum {
		errs = append(errs, fmt.Errorf("queue_type %q is not %q or %q", c.QueueType, QueueClassic, QueueQuorum))
	}
	if !slices.Contains(headerPrefixes, c.HeaderPrefix) {
		errs = append(errs, fmt.Errorf("header_prefix %q is not one of %q", c.HeaderPrefix, headerPrefixes))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"heartbeat", c.Heartbeat}, {"connect_timeout", c.ConnectTimeout},
		{"reconnect_initial", c.ReconnectInitial}, {"reconnect_max", c.ReconnectMax},
		{"publish_timeout", c.PublishTimeout}, {"nack_delay", c.NackDelay}, {"nack_delay_max", c.NackDelayMax},
		{"queue_expires", c.QueueExpires}, {"consumer_timeout", c.ConsumerTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative (leave it 0 for the default)", d.name, d.v))
		}
	}
	if c.Prefetch < 0 || c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("prefetch %d is out of range 1..65535 (0 means the default)", c.Prefetch))
	}
	if c.TimeoutAttempts < 0 {
		errs = append(errs, fmt.Errorf("timeout_attempts %d is negative (0 means the default, 3)", c.TimeoutAttempts))
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > maxMessageBytesHard {
		errs = append(errs, fmt.Errorf("max_message_bytes %d is out of range 1..%d, RabbitMQ's hard limit (0 means the broker's default)", c.MaxMessageBytes, maxMessageBytesHard))
	}
	if c.PublishChannels < 0 || c.PublishChannels > 1024 {
		errs = append(errs, fmt.Errorf("publish_channels %d is out of range 1..1024 (0 means the default)", c.PublishChannels))
	}
	if c.QueueExpires > 0 && c.QueueExpires < time.Millisecond {
		errs = append(errs, fmt.Errorf("queue_expires %v is below RabbitMQ's 1ms resolution", c.QueueExpires))
	}
	if c.ReconnectMax > 0 && c.ReconnectInitial > c.ReconnectMax {
		errs = append(errs, fmt.Errorf("reconnect_initial %v is above reconnect_max %v", c.ReconnectInitial, c.ReconnectMax))
	}
	if c.NackDelayMax > 0 && c.NackDelay > c.NackDelayMax {
		errs = append(errs, fmt.Errorf("nack_delay %v is above nack_delay_max %v", c.NackDelay, c.NackDelayMax))
	}
	for _, f := range []struct{ name, path string }{
		{"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// String returns c with the URL's password redacted (URL is a
// transports.SecretURL).
func (c Config) String() string {
	r := c
	r.Logger = nil
	type plain Config // no String method: no recursion
	return fmt.Sprintf("%+v", plain(r))
}

// GoString returns c with the URL's password redacted, for %#v.
func (c Config) GoString() string { return "rabbitmq.Config" + c.String() }

// Format prints c redacted for every verb, %+v and %#v included.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, c.GoString())
		return
	}
	_, _ = fmt.Fprint(f, c.String())
}

// tlsConfig builds the client's TLS configuration; nil for amqp:// URLs.
func (c Config) tlsConfig() (*tls.Config, error) {
	u, err := url.Parse(c.URL.Reveal())
	if err != nil || u.Scheme != "amqps" {
		return nil, nil
	}
	cfg, err := c.TLS.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone() // the ServerName default below must not change the caller's
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	return cfg, nil
}
