package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/busline/busline/transports"
)

// Config configures the Kafka transport. It is decoded strictly from the YAML
// section transport.kafka; every field is optional.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Default: the
	// comma-separated list in $BUSLINE_KAFKA_BROKERS (EnvBrokers) when set,
	// else ["127.0.0.1:9092"].
	Brokers []string `yaml:"brokers"`

	// Version caps the Kafka protocol version spoken, e.g. "2.8.0", for
	// brokers that misreport what they support. Default: empty, the
	// versions are negotiated with each broker.
	Version string `yaml:"version"`

	// ClientID names the connections on the broker. Default: the service name.
	ClientID string `yaml:"client_id"`

	// Partitions is the partition count of the topics the transport creates:
	// the most instances of a group that share a topic's work. Lane and
	// wait topics always get 1 partition. Default: 3.
	Partitions int32 `yaml:"partitions"`

	// ReplicationFactor of the topics the transport creates. Default: 1.
	ReplicationFactor int16 `yaml:"replication_factor"`

	// CreateTopics lets the transport create missing topics (with Partitions
	// and ReplicationFactor) before it publishes or subscribes. With false,
	// topics must exist or the broker must create them; delayed publishes
	// then need their wait topics created by hand (see README). Default: true.
	CreateTopics *bool `yaml:"create_topics"`

	// DialTimeout bounds opening a connection to a broker. Requests have
	// their own timeouts, which franz-go derives from each request's own
	// (a JoinGroup waits up to RebalanceTimeout). Default: 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`

	// PublishRetries is how many times the producer retries a send the
	// broker did not acknowledge; the idempotent producer makes retries
	// duplicate-free. Default: 10.
	PublishRetries int `yaml:"publish_retries"`

	// Compression of produced batches: none, gzip, snappy, lz4 or zstd.
	// Default: none.
	Compression string `yaml:"compression"`

	// MaxMessageBytes is the largest message Publish and PublishDelayed
	// accept, as transports.MessageSize counts it (the payload plus every
	// metadata key and value); a larger one is refused before anything is
	// sent, with a *transports.MessageTooLargeError (Features
	// MaxMessageBytes). The producer caps its record batches at
	// MaxMessageBytes + BatchOverhead, room for the record's framing, its
	// UUID header and key, so the brokers' message.max.bytes and the
	// topics' max.message.bytes must be at least that: a broker with a
	// lower limit refuses the record with MESSAGE_TOO_LARGE. Default:
	// DefaultMaxMessageBytes (1000000), whose batches are at most a default
	// broker's message.max.bytes, 1048588. At most 99 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`

	// Linger is how long the producer waits for more records before it
	// sends a batch. Concurrent publishes are pipelined either way.
	// Default: 0, send at once.
	Linger time.Duration `yaml:"linger"`

	// NackDelay is how long a nacked message waits before it is delivered
	// again on its partition; the partition's later messages wait behind it.
	// Default: 100ms. The failure pipeline of package bus moves failing
	// messages to its retry lane instead of nacking them.
	NackDelay time.Duration `yaml:"nack_delay"`

	// CommitInterval is how often the offsets of handled messages are
	// committed (the acked prefix of each partition). Offsets are also
	// committed when a partition is revoked and when a subscriber closes; a
	// crash redelivers at most this interval's worth of handled messages.
	// Default: 1s.
	CommitInterval time.Duration `yaml:"commit_interval"`

	// SessionTimeout is the consumer group session timeout: a consumer that
	// stops heartbeating for this long loses its partitions. Default: 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`

	// HeartbeatInterval is the consumer group heartbeat interval; it must be
	// below SessionTimeout. Default: 1s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`

	// RebalanceTimeout is how long the members of a group may take to
	// rejoin once a rebalance started. A partition being revoked first lets
	// its handler finish for up to a quarter of it (at most 5s), then
	// cancels the message's context. Default: 30s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`

	// SASL authenticates the connections. Default: none.
	SASL SASLConfig `yaml:"sasl"`

	// TLS encrypts the connections. Default: off.
	TLS TLSConfig `yaml:"tls"`

	// Logger receives the transport's logs. Default: slog.Default(). It
	// cannot be set from YAML; transports.Open passes its own.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// SASLConfig is the SASL section of [Config].
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Empty (the
	// default) turns SASL off.
	Mechanism string `yaml:"mechanism"`

	// Username to authenticate as. Required with a Mechanism.
	Username string `yaml:"username"`

	// Password of Username. It prints, logs and marshals as redacted
	// (transports.Secret) and is never included in errors.
	Password transports.Secret `yaml:"password"`
}

// TLSConfig is the TLS section of [Config], the same on every broker
// transport: TLS is on when Enabled or any other field is set; Config, when
// set, is used as it is. ServerName defaults to the host of each broker
// address.
type TLSConfig = transports.TLSConfig

// DefaultBroker is the broker address used when Config.Brokers is empty and
// EnvBrokers is not set.
const DefaultBroker = "127.0.0.1:9092"

// EnvBrokers is the environment variable New reads, comma-separated, when
// Config.Brokers is empty.
const EnvBrokers = "BUSLINE_KAFKA_BROKERS"

// DefaultMaxMessageBytes is Config.MaxMessageBytes by default: with
// BatchOverhead, a default broker's message.max.bytes (1048588).
const DefaultMaxMessageBytes = 1_000_000

// BatchOverhead is how much larger than Config.MaxMessageBytes a record
// batch of the producer may be: the batch header (61 bytes), the record's
// lengths and per-header lengths, the _watermill_message_uuid header, the
// record key (a copy of ce_partitionkey) and, for a delayed message, the
// wait header. A message at the limit fits unless its UUID and key
// together take most of it (tens of KB).
const BatchOverhead = 48_588

// maxMaxMessageBytes bounds Config.MaxMessageBytes: a produce request
// carries at least one whole batch, and brokers refuse requests over
// socket.request.max.bytes (100 MiB by default).
const maxMaxMessageBytes = 99 << 20

// maxBytesHint is how the size limit is set, for MessageTooLargeError.
const maxBytesHint = "transport.kafka.max_message_bytes"

// compressions are the accepted Config.Compression values.
var compressions = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

func (c *Config) setDefaults(service string) {
	if len(c.Brokers) == 0 {
		if env := os.Getenv(EnvBrokers); env != "" {
			for _, b := range strings.Split(env, ",") {
				if b = strings.TrimSpace(b); b != "" {
					c.Brokers = append(c.Brokers, b)
				}
			}
		}
	}
	if len(c.Brokers) == 0 {
		c.Brokers = []string{DefaultBroker}
	}
	if c.ClientID == "" {
		c.ClientID = service
	}
	if c.ClientID == "" {
		c.ClientID = "busline"
	}
	if c.Partitions == 0 {
		c.Partitions = 3
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.CreateTopics == nil {
		yes := true
		c.CreateTopics = &yes
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.PublishRetries == 0 {
		c.PublishRetries = 10
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	c.Compression = strings.ToLower(c.Compression)
	if c.NackDelay == 0 {
		c.NackDelay = 100 * time.Millisecond
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	c.SASL.Mechanism = strings.ToUpper(c.SASL.Mechanism)
}

// Validate reports every problem of a Config with defaults applied, joined.
func (c *Config) Validate() error {
	var errs []error
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil || strings.Contains(b, "://") {
			errs = append(errs, fmt.Errorf("transport.kafka.brokers: %q is not host:port (write e.g. 127.0.0.1:9092, without a scheme)", b))
		}
	}
	if c.Version != "" && kversion.FromString(c.Version) == nil {
		errs = append(errs, fmt.Errorf("transport.kafka.version: %q is not a Kafka version (write e.g. \"2.8.0\", or leave it empty to negotiate)", c.Version))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("transport.kafka.partitions: %d, want at least 1", c.Partitions))
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("transport.kafka.replication_factor: %d, want at least 1", c.ReplicationFactor))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial_timeout", c.DialTimeout}, {"linger", c.Linger}, {"nack_delay", c.NackDelay},
		{"commit_interval", c.CommitInterval}, {"session_timeout", c.SessionTimeout},
		{"heartbeat_interval", c.HeartbeatInterval}, {"rebalance_timeout", c.RebalanceTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("transport.kafka.%s: %v is negative", d.name, d.v))
		}
	}
	if c.PublishRetries < 0 {
		errs = append(errs, fmt.Errorf("transport.kafka.publish_retries: %d is negative", c.PublishRetries))
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > maxMaxMessageBytes {
		errs = append(errs, fmt.Errorf("%s: %d, want 1 to %d (0 means the default, %d)", maxBytesHint, c.MaxMessageBytes, maxMaxMessageBytes, DefaultMaxMessageBytes))
	}
	if _, ok := compressions[c.Compression]; !ok {
		errs = append(errs, fmt.Errorf("transport.kafka.compression: %q is not supported (use none, gzip, snappy, lz4 or zstd)", c.Compression))
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("transport.kafka.heartbeat_interval (%v) must be below session_timeout (%v)", c.HeartbeatInterval, c.SessionTimeout))
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.Username != "" || c.SASL.Password != "" {
			errs = append(errs, errors.New("transport.kafka.sasl: username or password set without a mechanism (set mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"))
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" {
			errs = append(errs, fmt.Errorf("transport.kafka.sasl.username is required with mechanism %s", c.SASL.Mechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("transport.kafka.sasl.mechanism: %q is not supported (use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.SASL.Mechanism))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("transport.kafka.tls: cert_file and key_file go together (set both, or neither)"))
	}
	return errors.Join(errs...)
}

// String describes the configuration without its password.
func (c Config) String() string {
	sasl := "none"
	if c.SASL.Mechanism != "" {
		sasl = c.SASL.Mechanism + " as " + c.SASL.Username
	}
	version := c.Version
	if version == "" {
		version = "negotiated"
	}
	return fmt.Sprintf("kafka brokers=%v version=%s sasl=%s tls=%t", c.Brokers, version, sasl, c.TLS.On())
}

// clientOpts are the franz-go options every client of the transport shares:
// brokers, identity, timeouts, SASL and TLS. They do not let a metadata
// request create a topic (producerOpts do).
func (c *Config) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
		kgo.MetadataMinAge(time.Second),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(100*time.Millisecond<<min(tries, 5), 2*time.Second)
		}),
	}
	if c.Version != "" {
		opts = append(opts, kgo.MaxVersions(kversion.FromString(c.Version)))
	}
	switch c.SASL.Mechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password.Reveal()}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password.Reveal()}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password.Reveal()}.AsSha512Mechanism()))
	}
	if c.TLS.On() {
		tc, err := c.TLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("transport.kafka.%w", err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}

// producerOpts are the options of the transport's producer: idempotent,
// acks from every in-sync replica, Java-compatible murmur2 key
// partitioning, pipelined requests, batches up to MaxMessageBytes +
// BatchOverhead.
func (c *Config) producerOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Keyed records by murmur2 exactly as the Java client's default
		// partitioner (kgo.KafkaHasher(murmur2)); unkeyed records to a
		// random partition per batch, so a burst of small events is spread
		// over the partitions (franz-go's default sticks to one partition
		// for 64KiB, which leaves the other consumers of a group idle).
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchCompression(compressions[c.Compression]),
		kgo.ProducerLinger(c.Linger),
		kgo.RecordRetries(c.PublishRetries),
		kgo.ProducerBatchMaxBytes(int32(c.MaxMessageBytes + BatchOverhead)),
	}
	if *c.CreateTopics {
		// Only the producers may have the brokers create a topic: the
		// other clients' metadata requests (Inspector's, Browse's) must
		// not create what they look for.
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	return opts
}
