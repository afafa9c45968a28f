package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/busline/busline/transports"
)

// Config configures the Kafka transport. It is decoded strictly from the YAML
// section transport.kafka; every field is optional.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Default: ["127.0.0.1:9092"].
	Brokers []string `yaml:"brokers"`

	// Version is the Kafka protocol version to speak, e.g. "3.6.0".
	// Default: "2.8.0", which every supported broker (and kfake) accepts.
	Version string `yaml:"version"`

	// ClientID names the connections on the broker. Default: the service name.
	ClientID string `yaml:"client_id"`

	// Partitions is the partition count of the topics the transport creates.
	// Lane topics (names ending in ".poison" or containing ".retry.") always
	// get 1 partition, so that one consumer scans them first in, first out.
	// Default: 3.
	Partitions int32 `yaml:"partitions"`

	// ReplicationFactor of the topics the transport creates. Default: 1.
	ReplicationFactor int16 `yaml:"replication_factor"`

	// CreateTopics lets the transport create missing topics (with Partitions
	// and ReplicationFactor) before it publishes or subscribes. With false,
	// topics must exist or the broker must create them. Default: true.
	CreateTopics *bool `yaml:"create_topics"`

	// DialTimeout bounds connecting, reading from and writing to a broker.
	// Default: 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`

	// PublishRetries is how many times the producer retries a send the
	// broker did not acknowledge; the idempotent producer makes retries
	// duplicate-free. Default: 10.
	PublishRetries int `yaml:"publish_retries"`

	// NackDelay is how long a nacked message waits before it is delivered
	// again on its partition. Default: 100ms. The failure pipeline of package
	// bus moves failing messages to retry lanes instead of nacking them.
	NackDelay time.Duration `yaml:"nack_delay"`

	// CommitInterval is how often the offsets of handled messages are
	// committed. Offsets are only ever committed for acked messages; a crash
	// redelivers at most this interval's worth of handled messages.
	// Default: 1s.
	CommitInterval time.Duration `yaml:"commit_interval"`

	// SessionTimeout is the consumer group session timeout: a consumer that
	// stops heartbeating for this long loses its partitions. Default: 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`

	// HeartbeatInterval is the consumer group heartbeat interval; it must be
	// below SessionTimeout. Default: 1s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`

	// SASL authenticates the connections. Default: none.
	SASL SASLConfig `yaml:"sasl"`

	// TLS encrypts the connections. Default: off.
	TLS TLSConfig `yaml:"tls"`

	// Logger receives the transport's logs. Default: slog.Default(). It
	// cannot be set from YAML; transports.Open passes its own.
	Logger *slog.Logger `yaml:"-"`
}

// SASLConfig is the SASL section of [Config].
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Empty (the
	// default) turns SASL off.
	Mechanism string `yaml:"mechanism"`

	// Username to authenticate as. Required with a Mechanism.
	Username string `yaml:"username"`

	// Password of Username. It is never logged nor included in errors.
	Password string `yaml:"password"`
}

// TLSConfig is the TLS section of [Config].
type TLSConfig struct {
	// Enabled turns TLS on. It is implied by any other field. Default: false.
	Enabled bool `yaml:"enabled"`

	// CAFile is a PEM file of the certificate authorities that sign the
	// brokers' certificates. Default: the system roots.
	CAFile string `yaml:"ca_file"`

	// CertFile and KeyFile are the PEM client certificate and key, for
	// brokers that authenticate clients by certificate. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	// ServerName overrides the name checked in the brokers' certificates.
	// Default: the host of each broker address.
	ServerName string `yaml:"server_name"`

	// InsecureSkipVerify disables certificate verification. For development
	// only. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`

	// Config, when set, is used as is and the file fields are ignored. It
	// cannot be set from YAML.
	Config *tls.Config `yaml:"-"`
}

func (t TLSConfig) enabled() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.Config != nil || t.InsecureSkipVerify || t.ServerName != ""
}

// DefaultBroker is the broker address used when Config.Brokers is empty.
const DefaultBroker = "127.0.0.1:9092"

func (c *Config) setDefaults(service string) {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{DefaultBroker}
	}
	if c.Version == "" {
		c.Version = "2.8.0"
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
	c.SASL.Mechanism = strings.ToUpper(c.SASL.Mechanism)
}

// Validate reports every problem of a Config with defaults applied, joined.
func (c *Config) Validate() error {
	var errs []error
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") || strings.Contains(b, "://") {
			errs = append(errs, fmt.Errorf("transport.kafka.brokers: %q is not host:port (write e.g. 127.0.0.1:9092, without a scheme)", b))
		}
	}
	if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		errs = append(errs, fmt.Errorf("transport.kafka.version: %q is not a Kafka version (write e.g. \"2.8.0\")", c.Version))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("transport.kafka.partitions: %d, want at least 1", c.Partitions))
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("transport.kafka.replication_factor: %d, want at least 1", c.ReplicationFactor))
	}
	for name, d := range map[string]time.Duration{
		"dial_timeout": c.DialTimeout, "nack_delay": c.NackDelay, "commit_interval": c.CommitInterval,
		"session_timeout": c.SessionTimeout, "heartbeat_interval": c.HeartbeatInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("transport.kafka.%s: %v is negative", name, d))
		}
	}
	if c.PublishRetries < 0 {
		errs = append(errs, fmt.Errorf("transport.kafka.publish_retries: %d is negative", c.PublishRetries))
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("transport.kafka.heartbeat_interval (%v) must be below session_timeout (%v)", c.HeartbeatInterval, c.SessionTimeout))
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.Username != "" || c.SASL.Password != "" {
			errs = append(errs, errors.New("transport.kafka.sasl: username or password set without a mechanism (set mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"))
		}
	case sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
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
	return fmt.Sprintf("kafka brokers=%v version=%s sasl=%s tls=%t", c.Brokers, c.Version, sasl, c.TLS.enabled())
}

// saramaConfig builds the Sarama configuration shared by the producer, the
// consumers and the admin client.
func (c *Config) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return nil, err
	}
	sc.Version = v
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = c.DialTimeout
	sc.Net.ReadTimeout = c.DialTimeout
	sc.Net.WriteTimeout = c.DialTimeout
	sc.Metadata.Retry.Max = 3
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	sc.Metadata.AllowAutoTopicCreation = *c.CreateTopics

	// Producer: idempotent, acks from all in-sync replicas, bounded retries.
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Retry.Max = c.PublishRetries
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Net.MaxOpenRequests = 1 // required by the idempotent producer

	// Consumer: a new group starts at the oldest offset; offsets of acked
	// messages are committed every CommitInterval.
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = c.CommitInterval
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = 30 * time.Second
	sc.Consumer.Group.Rebalance.Retry.Backoff = 500 * time.Millisecond

	if c.SASL.Mechanism != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = c.SASL.Username
		sc.Net.SASL.Password = c.SASL.Password
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(c.SASL.Mechanism)
		switch c.SASL.Mechanism {
		case sarama.SASLTypeSCRAMSHA256:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAMClient(sha256Hash) }
		case sarama.SASLTypeSCRAMSHA512:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAMClient(sha512Hash) }
		}
	}
	if c.TLS.enabled() {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: invalid client configuration: %w", err)
	}
	return sc, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	if t.Config != nil {
		return t.Config, nil
	}
	tc, err := transports.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("transport.kafka.%w", err)
	}
	return tc, nil
}
