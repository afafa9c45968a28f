package transports_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busline/busline/internal/testcerts"
	"github.com/busline/busline/transports"
)

func TestTLSConfigClientConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs, err := testcerts.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := certs.ClientCert, certs.ClientKey
	notPEM := filepath.Join(dir, "not.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)

	cfg, err := transports.TLSConfig{CAFile: certs.CA, CertFile: cert, KeyFile: key, ServerName: "broker.local"}.ClientConfig()
	if err != nil {
		t.Fatalf("ClientConfig: %v", err)
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "broker.local" || cfg.MinVersion < 0x0303 {
		t.Errorf("config %+v: want the CA pool, one client certificate, the server name and TLS 1.2+", cfg)
	}
	for name, tt := range map[string]struct {
		files transports.TLSConfig
		want  string
	}{
		"MissingCA":  {transports.TLSConfig{CAFile: filepath.Join(dir, "nope.pem")}, "tls.ca_file"},
		"CANotPEM":   {transports.TLSConfig{CAFile: notPEM}, "holds no PEM certificate"},
		"KeyMissing": {transports.TLSConfig{CertFile: cert}, "tls.cert_file"},
		"BadPair":    {transports.TLSConfig{CertFile: cert, KeyFile: notPEM}, "tls.key_file"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tt.files.ClientConfig(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ClientConfig = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestTLSConfigOn(t *testing.T) {
	t.Parallel()
	if (transports.TLSConfig{}).On() {
		t.Error("the zero TLSConfig turns TLS on")
	}
	for _, c := range []transports.TLSConfig{{Enabled: true}, {CAFile: "ca.pem"}, {ServerName: "broker"}, {InsecureSkipVerify: true}, {Config: &tls.Config{}}} {
		if !c.On() {
			t.Errorf("%+v does not turn TLS on", c)
		}
	}
	own := &tls.Config{ServerName: "mine"}
	if got, err := (transports.TLSConfig{Config: own, CAFile: "ignored.pem"}).ClientConfig(); err != nil || got != own {
		t.Errorf("ClientConfig with Config set = %v, %v; want Config itself", got, err)
	}
}
