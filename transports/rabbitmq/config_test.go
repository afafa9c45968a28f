package rabbitmq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/config"
	"github.com/busline/busline/transports/rabbitmq"
)

// The transport.rabbitmq YAML section decodes strictly into Config.
func TestYAMLSection(t *testing.T) {
	t.Parallel()
	yaml := []byte(`
service: checkout
transport:
  kind: rabbitmq
  rabbitmq:
    url: "${RABBITMQ_URL:-amqp://app:pw@rabbit:5672/shop}"
    queue_type: quorum
    prefetch: 64
    publish_channels: 8
    publish_timeout: 10s
    heartbeat: 5s
    nack_delay: 250ms
    nack_delay_max: 10s
    tls: { ca_file: "", server_name: rabbit.internal }
`)
	cfg, err := config.Parse(yaml, "busline.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var rc rabbitmq.Config
	if err := cfg.Transport.Decode(&rc); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := rabbitmq.Config{
		URL: "amqp://app:pw@rabbit:5672/shop", QueueType: "quorum", Prefetch: 64, PublishChannels: 8,
		PublishTimeout: 10 * time.Second, Heartbeat: 5 * time.Second, NackDelay: 250 * time.Millisecond,
		NackDelayMax: 10 * time.Second, TLS: rabbitmq.TLSConfig{ServerName: "rabbit.internal"},
	}
	if rc.String() != want.String() {
		t.Errorf("decoded\n%v\nwant\n%v", rc, want)
	}
	if strings.Contains(rc.String(), ":pw@") {
		t.Errorf("String shows the password: %v", rc)
	}

	cfg, err = config.Parse([]byte("service: s\ntransport:\n  kind: rabbitmq\n  rabbitmq:\n    prefech: 3\n"), "busline.yaml", nil)
	if err == nil {
		err = cfg.Transport.Decode(&rc)
	}
	if err == nil || !strings.Contains(err.Error(), `did you mean "prefetch"`) {
		t.Errorf("unknown key: %v, want a did-you-mean for prefetch", err)
	}
}

// Validate reports every problem at once, each saying how to fix it.
func TestValidateJoinsProblems(t *testing.T) {
	t.Parallel()
	_, err := rabbitmq.New(context.Background(), rabbitmq.Config{
		URL: "amqp://guest:guest@localhost/", QueueType: "stream", Auth: "kerberos", Prefetch: -1,
		NackDelay: time.Minute, NackDelayMax: time.Second, TLS: rabbitmq.TLSConfig{CertFile: "/nonexistent.pem"},
	})
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{
		`queue_type "stream"`, `auth "kerberos"`, "prefetch -1", "nack_delay 1m0s is above nack_delay_max",
		"use amqps://", "tls.cert_file and tls.key_file must be set together", "tls.cert_file: stat /nonexistent.pem",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
