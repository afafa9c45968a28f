package kafka_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/busline/internal/testcerts"
	"github.com/busline/busline/transports/kafka"
)

// TestTLS runs a TLS-only broker that requires client certificates: the
// transport connects with the CA, certificate and key files and publishes;
// without a client certificate, or trusting only the system roots, it is
// refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	certs, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(caPEM)
	c := newCluster(t, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS12,
	}))

	cfg := testConfig(c.ListenAddrs())
	cfg.TLS = kafka.TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}
	tr := open(t, cfg)
	publish(t, tr, unique("tls"), "over-mtls")

	for name, bad := range map[string]kafka.TLSConfig{
		"NoClientCertificate": {CAFile: certs.CA},
		"UnknownCA":           {Enabled: true, CertFile: certs.ClientCert, KeyFile: certs.ClientKey},
	} {
		cfg.TLS = bad
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tr, err := kafka.New(ctx, cfg)
		cancel()
		if err == nil {
			_ = tr.Close()
			t.Errorf("%s: New connected, want a refusal", name)
		}
	}
}
