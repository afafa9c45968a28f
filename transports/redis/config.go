package redis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/busline/busline/internal/redact"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports"
)

// Config configures the Redis transport; it is the YAML section
// transport.redis. The zero value connects to $BUSLINE_REDIS_ADDR, else
// 127.0.0.1:6379, with the defaults given on each field.
type Config struct {
	// URL is a redis:// or rediss:// URL (redis://user:password@host:6379/0).
	// When set it replaces Addr, Username, Password and DB, and rediss
	// turns TLS on. It prints with its password redacted. Default: empty.
	URL transports.SecretURL `yaml:"url"`

	// Addr is host:port of a single Redis server. Default:
	// $BUSLINE_REDIS_ADDR (EnvAddr) when set, else 127.0.0.1:6379; neither
	// is used when URL or ClusterAddrs is set.
	Addr string `yaml:"addr"`

	// ClusterAddrs are seed host:port addresses of a Redis Cluster. When set,
	// busline uses a cluster client and ignores Addr, URL and DB. Default:
	// empty, no cluster.
	ClusterAddrs []string `yaml:"cluster_addrs"`

	// Username is the ACL user. Default: empty, the default user.
	Username string `yaml:"username"`

	// Password is the ACL or requirepass password. It prints, logs and
	// marshals as "xxxxx" and never appears in errors. Default: empty.
	Password transports.Secret `yaml:"password"`

	// DB is the database number. Default: 0.
	DB int `yaml:"db"`

	// TLS configures TLS to Redis. Default: off (on for rediss:// URLs).
	TLS TLSConfig `yaml:"tls"`

	// PoolSize is the most connections kept per node. Each topic a
	// subscriber consumes holds one while it waits for entries (a bus
	// subscription consumes its topic and its retry lane, whatever its
	// concurrency), so it must exceed the number of those. Default:
	// go-redis's, 10 per CPU.
	PoolSize int `yaml:"pool_size"`

	// MinIdleConns is how many idle connections are kept open. Default: 0.
	MinIdleConns int `yaml:"min_idle_conns"`

	// DialTimeout bounds connecting. Default: 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`

	// ReadTimeout and WriteTimeout bound each command. Default: 3s each.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`

	// KeyPrefix is prepended to every topic to form its stream key.
	// Default: "busline:".
	KeyPrefix string `yaml:"key_prefix"`

	// Consumer is the base of this process's consumer names; subscriptions
	// are "<consumer>-0", "<consumer>-1", ... and the process keeps its
	// liveness key "<key_prefix>live:<consumer>" fresh (see ConsumerTTL).
	// Two live processes must never share one. Default:
	// "<service>-<hostname>-<pid>", unique per process: a restarted
	// process's old entries are claimed once its predecessor's liveness key
	// is stale, ConsumerTTL after the crash. A name that survives restarts
	// (a StatefulSet pod name) takes its own entries back at once.
	Consumer string `yaml:"consumer"`

	// ConsumerTTL is how long a process's liveness key stays fresh without
	// a refresh; it is refreshed every ConsumerTTL/3 while a subscription
	// runs. The live consumers of a group claim the pending entries of a
	// consumer whose key went stale at once, and remove it from the group
	// once it holds nothing. A process that stalls longer (paused, cut
	// from Redis) has its entries handled twice. Default: 3s.
	ConsumerTTL time.Duration `yaml:"consumer_ttl"`

	// BatchSize is XREADGROUP's COUNT: how many entries a subscription reads
	// at once. The next read starts when half a batch is left. Default: 100.
	BatchSize int `yaml:"batch_size"`

	// Block is how long XREADGROUP waits for new entries, and so the most a
	// closing subscription waits for its read. Default: 500ms.
	Block time.Duration `yaml:"block"`

	// AckInterval is the longest an acked entry waits for its batched XACK.
	// Default: 50ms.
	AckInterval time.Duration `yaml:"ack_interval"`

	// ClaimIdle is how long an entry must stay pending with a consumer that
	// has no liveness key (another client, an older busline) before a live
	// consumer claims it; also how long entries a closing subscription hands
	// back count as idle. A consumer without a liveness key that stalls
	// longer has its entries handled twice. Default: 30s.
	ClaimIdle time.Duration `yaml:"claim_idle"`

	// ClaimInterval is how often each subscription looks for dead
	// consumers and for idle entries to claim. Default: 1s.
	ClaimInterval time.Duration `yaml:"claim_interval"`

	// NackDelay is the wait before a nacked entry is delivered again; it
	// doubles per consecutive nack of the entry up to NackDelayMax.
	// Defaults: 100ms and 5s.
	NackDelay    time.Duration `yaml:"nack_delay"`
	NackDelayMax time.Duration `yaml:"nack_delay_max"`

	// DelayPoll is the longest a subscription's mover sleeps between two
	// looks at its topic's delayed set (see PublishDelayed): it wakes at
	// the earliest due time it knows of, or at once when this transport
	// stores an earlier one, so DelayPoll bounds how late a delayed message
	// stored by another process is moved. Each look is one EVALSHA per
	// topic and process. Default: 500ms.
	DelayPoll time.Duration `yaml:"delay_poll"`

	// MaxLen trims each stream to about this many entries on every XADD
	// (MAXLEN ~). Trimming ignores consumer groups: see the package
	// documentation before setting it. Lane streams (".retry", ".poison")
	// are never trimmed. Default: 0, no trimming.
	MaxLen int64 `yaml:"max_len"`

	// MinIDAge trims entries older than this on every XADD (MINID ~), with
	// the same caveat as MaxLen. Default: 0, no trimming.
	MinIDAge time.Duration `yaml:"min_id_age"`

	// ExactTrim trims exactly (= instead of ~), which costs more. Default:
	// false.
	ExactTrim bool `yaml:"exact_trim"`

	// MaxMessageBytes is the largest message Publish and PublishDelayed
	// accept, as transports.MessageSize counts it (the payload plus every
	// metadata key and value); a larger one is refused before anything is
	// sent, with a *transports.MessageTooLargeError, and fails no other
	// publish (Features().MaxMessageBytes). Redis itself takes arguments
	// up to proto-max-bulk-len (512 MB) and a client's pending command up
	// to client-query-buffer-limit (1 GB); over either it closes the
	// connection, which fails every publish of the pipeline with EOF. A
	// message is at most its size in one argument (a delayed one: its size
	// plus a few bytes per metadata entry). Default:
	// DefaultMaxMessageBytes, 1000000. At most 512 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`

	// WatermillCompatible makes every entry readable by a plain
	// watermill-redisstream subscriber (its default unmarshaller) as well:
	// besides a field per metadata key, an entry then holds
	// "_watermill_message_uuid" (the message UUID) and "metadata" (the
	// metadata as one msgpack map, sorted by key), and "metadata" is a
	// reserved metadata key. It costs the metadata twice in every entry and
	// a msgpack encoding per message (see the package documentation,
	// "Watermill"), so it is off unless watermill-redisstream consumers
	// still read topics busline publishes to, while a team moves them to
	// busline. busline reads watermill-redisstream's entries either way.
	// Default: false.
	WatermillCompatible bool `yaml:"watermill_compatible"`

	// LossReportWindow is how long Health reports a lost consumer group
	// after it was recreated. Default: 1m.
	LossReportWindow time.Duration `yaml:"loss_report_window"`

	// Service names consumers (see Consumer). Set by transports.Open from
	// the bus's service. Default: "busline".
	Service string `yaml:"-"`

	// Logger receives the transport's logs. Default: slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// TLSConfig configures TLS to Redis, as on every broker transport: TLS is
// on when Enabled or any other field is set, and for rediss:// URLs;
// Config, when set, is used as it is. ServerName defaults to the host of
// Addr or URL.
type TLSConfig = transports.TLSConfig

// EnvAddr is the environment variable read for the server address when
// Config names none (no Addr, URL or ClusterAddrs).
const EnvAddr = "BUSLINE_REDIS_ADDR"

// DefaultAddr is the address used when neither Config nor EnvAddr names
// one.
const DefaultAddr = "127.0.0.1:6379"

// DefaultKeyPrefix is the default Config.KeyPrefix.
const DefaultKeyPrefix = "busline:"

// DefaultMaxMessageBytes is Config.MaxMessageBytes by default. It is the
// Kafka transport's default too, so that an app moving between the two
// meets one limit, and it fits every Redis: even one whose
// client-query-buffer-limit is at its floor, 1mb, where a 2 MiB message
// closed the connection (EOF) and failed the publishes sharing its
// pipeline, a message of this size, published or delayed, goes through
// with tens of KB to spare. Entries that large slow every reader (a
// consumer reads batch_size of them at once) and fill Redis's memory.
const DefaultMaxMessageBytes = 1_000_000

// maxMaxMessageBytes bounds Config.MaxMessageBytes: Redis's default
// proto-max-bulk-len.
const maxMaxMessageBytes = 512 << 20

// maxBytesHint is how the size limit is set, for MessageTooLargeError.
const maxBytesHint = "transport.redis.max_message_bytes"

func (c *Config) setDefaults() {
	if c.Addr == "" && c.URL == "" && len(c.ClusterAddrs) == 0 {
		c.Addr = os.Getenv(EnvAddr)
		if c.Addr == "" {
			c.Addr = DefaultAddr
		}
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Service == "" {
		c.Service = "busline"
	}
	if c.Consumer == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "host"
		}
		c.Consumer = fmt.Sprintf("%s-%s-%d", c.Service, host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	setDuration(&c.DialTimeout, 5*time.Second)
	setDuration(&c.ReadTimeout, 3*time.Second)
	setDuration(&c.WriteTimeout, 3*time.Second)
	setDuration(&c.Block, 500*time.Millisecond)
	setDuration(&c.AckInterval, 50*time.Millisecond)
	setDuration(&c.ClaimIdle, 30*time.Second)
	setDuration(&c.ClaimInterval, time.Second)
	setDuration(&c.ConsumerTTL, 3*time.Second)
	setDuration(&c.NackDelay, 100*time.Millisecond)
	setDuration(&c.NackDelayMax, 5*time.Second)
	setDuration(&c.LossReportWindow, time.Minute)
	setDuration(&c.DelayPoll, 500*time.Millisecond)
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Validate returns every problem of c at once. Call it after the defaults
// are set (New does both).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.URL != "" {
		if _, err := goredis.ParseURL(c.URL.Reveal()); err != nil {
			bad("url %q: %s (want redis://[user:password@]host:port/db or rediss://...)", c.URL.String(), redact.Error(err, c.secrets()...))
		}
	}
	if c.URL != "" && (c.Password != "" || c.Username != "" || c.DB != 0) {
		bad("url and username/password/db are both set: put the credentials and db in the url, or drop the url")
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			bad("addr %q is not host:port (e.g. 127.0.0.1:6379)", c.Addr)
		}
	}
	for _, a := range c.ClusterAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("cluster_addrs: %q is not host:port", a)
		}
	}
	if len(c.ClusterAddrs) > 0 && c.DB != 0 {
		bad("db %d with cluster_addrs: Redis Cluster has only db 0", c.DB)
	}
	if c.DB < 0 {
		bad("db %d is negative", c.DB)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file go together: set both or neither")
	}
	if strings.ContainsAny(c.KeyPrefix, " \t\r\n") {
		bad("key_prefix %q contains white space", c.KeyPrefix)
	}
	if strings.ContainsAny(c.Consumer, " \t\r\n") {
		bad("consumer %q contains white space", c.Consumer)
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		bad("batch_size %d is out of range 1..10000", c.BatchSize)
	}
	if c.PoolSize < 0 || c.MinIdleConns < 0 {
		bad("pool_size %d and min_idle_conns %d must not be negative", c.PoolSize, c.MinIdleConns)
	}
	for name, d := range map[string]time.Duration{
		"dial_timeout": c.DialTimeout, "read_timeout": c.ReadTimeout, "write_timeout": c.WriteTimeout,
		"block": c.Block, "ack_interval": c.AckInterval, "claim_idle": c.ClaimIdle,
		"claim_interval": c.ClaimInterval, "nack_delay": c.NackDelay, "nack_delay_max": c.NackDelayMax,
		"loss_report_window": c.LossReportWindow, "min_id_age": c.MinIDAge, "delay_poll": c.DelayPoll,
		"consumer_ttl": c.ConsumerTTL,
	} {
		if d < 0 {
			bad("%s %v is negative", name, d)
		}
	}
	if c.Block > 0 && c.Block < time.Millisecond {
		bad("block %v is below 1ms", c.Block)
	}
	if c.ClaimIdle > 0 && c.ClaimIdle < 100*time.Millisecond {
		bad("claim_idle %v is below 100ms: live consumers would steal each other's entries", c.ClaimIdle)
	}
	if c.ConsumerTTL > 0 && c.ConsumerTTL < 300*time.Millisecond {
		bad("consumer_ttl %v is below 300ms: a live consumer could not refresh its liveness key in time", c.ConsumerTTL)
	}
	if c.DelayPoll > 0 && c.DelayPoll < time.Millisecond {
		bad("delay_poll %v is below 1ms", c.DelayPoll)
	}
	if c.NackDelayMax < c.NackDelay {
		bad("nack_delay_max %v is below nack_delay %v", c.NackDelayMax, c.NackDelay)
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > maxMaxMessageBytes {
		bad("max_message_bytes %d is out of range 1..%d (512 MiB, Redis's proto-max-bulk-len); 0 means the default, %d", c.MaxMessageBytes, maxMaxMessageBytes, DefaultMaxMessageBytes)
	}
	if c.MaxLen < 0 {
		bad("max_len %d is negative (0 means no trimming)", c.MaxLen)
	}
	if c.MaxLen > 0 && c.MinIDAge > 0 {
		bad("max_len and min_id_age are both set: Redis trims by one of them; pick one")
	}
	return errors.Join(errs...)
}

// LogValue logs the configuration with its password and URL credentials
// redacted.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("addr", c.Addr),
		slog.String("key_prefix", c.KeyPrefix),
		slog.String("consumer", c.Consumer),
		slog.Bool("tls", c.TLS.On() || strings.HasPrefix(c.URL.Reveal(), "rediss:")),
	}
	if c.URL != "" {
		attrs = append(attrs, slog.String("url", c.URL.String()))
	}
	if len(c.ClusterAddrs) > 0 {
		attrs = append(attrs, slog.Any("cluster_addrs", c.ClusterAddrs))
	}
	if c.Username != "" {
		attrs = append(attrs, slog.String("username", c.Username))
	}
	if c.Password != "" {
		attrs = append(attrs, slog.String("password", c.Password.String()))
	}
	return slog.GroupValue(attrs...)
}

// target names the server for messages, without credentials.
func (c *Config) target() string {
	switch {
	case len(c.ClusterAddrs) > 0:
		return "cluster " + strings.Join(c.ClusterAddrs, ",")
	case c.URL != "":
		return c.URL.String()
	default:
		return c.Addr
	}
}

// client builds the go-redis client c describes.
func (c *Config) client() (goredis.UniversalClient, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if len(c.ClusterAddrs) > 0 {
		return goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:        c.ClusterAddrs,
			Username:     c.Username,
			Password:     c.Password.Reveal(),
			TLSConfig:    tlsCfg,
			PoolSize:     c.PoolSize,
			MinIdleConns: c.MinIdleConns,
			DialTimeout:  c.DialTimeout,
			ReadTimeout:  c.ReadTimeout,
			WriteTimeout: c.WriteTimeout,
			// A command's context deadline bounds its socket reads
			// and writes, so that Publish returns by its deadline.
			ContextTimeoutEnabled: true,
		}), nil
	}
	opts := &goredis.Options{Addr: c.Addr, Username: c.Username, Password: c.Password.Reveal(), DB: c.DB}
	if c.URL != "" {
		if opts, err = goredis.ParseURL(c.URL.Reveal()); err != nil {
			return nil, fmt.Errorf("url %s: %s", c.URL.String(), redact.Error(err, c.secrets()...))
		}
	}
	if tlsCfg != nil {
		if opts.TLSConfig != nil && tlsCfg.ServerName == "" {
			tlsCfg.ServerName = opts.TLSConfig.ServerName
		}
		opts.TLSConfig = tlsCfg
	}
	opts.PoolSize = c.PoolSize
	opts.MinIdleConns = c.MinIdleConns
	opts.DialTimeout = c.DialTimeout
	opts.ReadTimeout = c.ReadTimeout
	opts.WriteTimeout = c.WriteTimeout
	opts.ContextTimeoutEnabled = true // see the cluster client above
	opts.ClientName = c.Consumer
	return goredis.NewClient(opts), nil
}

// tlsConfig returns nil when TLS is off.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS.On() {
		return nil, nil
	}
	cfg, err := c.TLS.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone() // the ServerName default below must not change the caller's
	if cfg.ServerName == "" && c.Addr != "" && c.URL == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(c.Addr)
	}
	return cfg, nil
}

// secrets returns what of c must never be printed: the password, the URL
// and the URL's password.
func (c *Config) secrets() []string {
	return append(redact.URLSecrets(c.URL.Reveal()), c.URL.Reveal(), c.Password.Reveal())
}
