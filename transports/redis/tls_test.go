package redis_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/internal/testcerts"
	"github.com/busline/busline/transports/redis"
)

// TestTLS runs a private redis-server with TLS that requires client
// certificates: the transport connects with the CA, certificate and key
// files and carries a message; a wrong CA, or no TLS at all, is refused
// with an error that says to check the TLS settings.
func TestTLS(t *testing.T) {
	t.Parallel()
	certs, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	startServer(t, "--tls-port", strconv.Itoa(port), "--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey,
		"--tls-ca-cert-file", certs.CA, "--tls-auth-clients", "yes")
	addr := "127.0.0.1:" + strconv.Itoa(port)

	tr := open(t, redis.Config{Addr: addr, TLS: redis.TLSConfig{Enabled: true, CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}})
	topic := uniq("tls")
	s := newSeen()
	b := runBus(t, tr, topic, "billing", s)
	publishRetrying(t, b, order{Seq: 1})
	waitFor(t, 10*time.Second, "the event over TLS", func() bool { return s.has(1) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = redis.New(ctx, redis.Config{Addr: addr, Logger: quietLogger(), TLS: redis.TLSConfig{Enabled: true, CAFile: certs.OtherCA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}})
	if err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "check the TLS settings") || strings.Contains(err.Error(), "redis-server running") {
		t.Errorf("connecting with the wrong CA: %v, want a certificate error that says to check the TLS settings", err)
	}
	_, err = redis.New(ctx, redis.Config{Addr: addr, Logger: quietLogger()})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), "redis-server running") {
		t.Errorf("connecting without TLS to a TLS port: %v, want an error that says to check the TLS settings", err)
	}
}

// freePort returns a loopback port free at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
