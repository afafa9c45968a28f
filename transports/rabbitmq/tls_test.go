package rabbitmq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

// Over amqps://, with a CA and a client certificate generated for the test,
// messages round-trip; a wrong CA fails with an error that says to check it.
func TestTLS(t *testing.T) {
	n := startedPrivateNode(t)
	t.Run("RoundTrip", func(t *testing.T) {
		tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(n.tlsURL()), TLS: rabbitmq.TLSConfig{
			CAFile: n.certs.CA, CertFile: n.certs.ClientCert, KeyFile: n.certs.ClientKey,
		}})
		topic, group := ids("tls")
		msgs := subscribe(t, tr, topic, group)
		pub, _ := tr.Publisher()
		if err := pub.Publish(topic, message.NewMessage("tls-1", []byte("over tls"))); err != nil {
			t.Fatalf("publish: %v", err)
		}
		m := receive(t, msgs, 10*time.Second)
		if m.UUID != "tls-1" || string(m.Payload) != "over tls" {
			t.Errorf("got %q %q", m.UUID, m.Payload)
		}
		m.Ack()
		if err := tr.Health(context.Background()); err != nil {
			t.Errorf("Health: %v", err)
		}
	})
	t.Run("ServerNameOverride", func(t *testing.T) {
		url := strings.Replace(n.tlsURL(), "localhost", "127.0.0.1", 1)
		newTransport(t, rabbitmq.Config{URL: transports.SecretURL(url), TLS: rabbitmq.TLSConfig{CAFile: n.certs.CA, ServerName: "localhost"}})
	})
	t.Run("ExternalAuth", func(t *testing.T) {
		// The client certificate's common name, guest, is the user; the URL
		// carries no password.
		url := strings.Replace(n.tlsURL(), "guest:guest@", "", 1)
		tr := newTransport(t, rabbitmq.Config{URL: transports.SecretURL(url), Auth: rabbitmq.AuthExternal, TLS: rabbitmq.TLSConfig{
			CAFile: n.certs.CA, CertFile: n.certs.ClientCert, KeyFile: n.certs.ClientKey,
		}})
		if err := tr.Health(context.Background()); err != nil {
			t.Errorf("Health: %v", err)
		}
	})
	t.Run("WrongCA", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		tr, err := rabbitmq.New(ctx, rabbitmq.Config{URL: transports.SecretURL(n.tlsURL()), Logger: quietLogger(), TLS: rabbitmq.TLSConfig{CAFile: n.certs.OtherCA}})
		if err == nil {
			_ = tr.Close()
			t.Fatal("connected with a CA that did not sign the broker's certificate")
		}
		for _, want := range []string{"certificate", "check tls.ca_file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "guest:guest") {
			t.Errorf("error shows the password: %v", err)
		}
	})
	t.Run("TLSWithoutAmqps", func(t *testing.T) {
		_, err := rabbitmq.New(context.Background(), rabbitmq.Config{URL: transports.SecretURL(n.url()), TLS: rabbitmq.TLSConfig{CAFile: n.certs.CA}})
		if err == nil || !strings.Contains(err.Error(), "use amqps://") {
			t.Errorf("New = %v, want an error saying to use amqps://", err)
		}
	})
}
