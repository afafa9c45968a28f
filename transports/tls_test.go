package transports_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busline/busline/internal/testcerts"
	"github.com/busline/busline/transports"
)

func TestTLSFilesClientConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs, err := testcerts.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := certs.ClientCert, certs.ClientKey
	notPEM := filepath.Join(dir, "not.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)

	cfg, err := transports.TLSFiles{CAFile: certs.CA, CertFile: cert, KeyFile: key, ServerName: "broker.local"}.ClientConfig()
	if err != nil {
		t.Fatalf("ClientConfig: %v", err)
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "broker.local" || cfg.MinVersion < 0x0303 {
		t.Errorf("config %+v: want the CA pool, one client certificate, the server name and TLS 1.2+", cfg)
	}
	for name, tt := range map[string]struct {
		files transports.TLSFiles
		want  string
	}{
		"MissingCA":  {transports.TLSFiles{CAFile: filepath.Join(dir, "nope.pem")}, "tls.ca_file"},
		"CANotPEM":   {transports.TLSFiles{CAFile: notPEM}, "holds no PEM certificate"},
		"KeyMissing": {transports.TLSFiles{CertFile: cert}, "tls.cert_file"},
		"BadPair":    {transports.TLSFiles{CertFile: cert, KeyFile: notPEM}, "tls.key_file"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tt.files.ClientConfig(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ClientConfig = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
