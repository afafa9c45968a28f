package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/busline/transports/kafka"
)

func TestSASL(t *testing.T) {
	t.Parallel()
	const user, pass = "busline", "s3cret-Pa55word"
	c := newCluster(t, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", user, pass),
		kfake.Superuser("SCRAM-SHA-256", user, pass),
		kfake.Superuser("SCRAM-SHA-512", user, pass))
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(strings.ReplaceAll(mech, "-", ""), func(t *testing.T) {
			t.Parallel()
			t.Run("RightPassword", func(t *testing.T) {
				cfg := testConfig(c.ListenAddrs())
				cfg.SASL = kafka.SASLConfig{Mechanism: mech, Username: user, Password: pass}
				tr := open(t, cfg)
				pub, err := tr.Publisher()
				if err != nil {
					t.Fatal(err)
				}
				defer pub.Close()
				if err := pub.Publish(unique("sasl"), message.NewMessage("m1", []byte("{}"))); err != nil {
					t.Fatalf("publish with the right password: %v", err)
				}
				if err := tr.Health(context.Background()); err != nil {
					t.Errorf("Health: %v", err)
				}
			})
			t.Run("WrongPassword", func(t *testing.T) {
				const wrong = "not-the-Pa55word"
				cfg := testConfig(c.ListenAddrs())
				cfg.SASL = kafka.SASLConfig{Mechanism: mech, Username: user, Password: wrong}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				start := time.Now()
				tr, err := kafka.New(ctx, cfg)
				took := time.Since(start)
				if err == nil {
					_ = tr.Close()
					t.Fatal("New with a wrong password succeeded")
				}
				if took > 5*time.Second {
					t.Errorf("New failed after %v, want within 5s", took)
				}
				if !errors.Is(err, kafka.ErrAuthentication) {
					t.Errorf("error %q does not wrap ErrAuthentication", err)
				}
				for _, secret := range []string{wrong, pass} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q contains a password", err)
					}
				}
				if !strings.Contains(err.Error(), "sasl.username and password") {
					t.Errorf("error %q does not say what to fix", err)
				}
				t.Logf("failed in %v: %v", took.Round(time.Millisecond), err)
			})
		})
	}
}

func TestConfigStringHidesPassword(t *testing.T) {
	t.Parallel()
	cfg := kafka.Config{Brokers: []string{"k1:9092"}, SASL: kafka.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "hunter2"}}
	if s := cfg.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "PLAIN as u") {
		t.Errorf("Config.String() = %q: want the mechanism and user, not the password", s)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, cfg.SASL); strings.Contains(s, "hunter2") {
			t.Errorf("Sprintf(%q, SASLConfig) = %q: it shows the password", verb, s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cfg := kafka.Config{
		Brokers:           []string{"kafka://k1:9092"},
		Version:           "banana",
		HeartbeatInterval: 20 * time.Second,
		SASL:              kafka.SASLConfig{Mechanism: "GSSAPI"},
		TLS:               kafka.TLSConfig{CertFile: "client.pem"},
	}
	_, err := kafka.New(context.Background(), cfg)
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{"brokers", "version", "heartbeat_interval", "mechanism", "cert_file and key_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	cfg := testConfig([]string{"127.0.0.1:1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := kafka.New(ctx, cfg)
	if !errors.Is(err, kafka.ErrUnreachable) || !strings.Contains(err.Error(), "devkafka") {
		t.Errorf("New on a closed port = %v, want ErrUnreachable with how to start a broker", err)
	}
}
