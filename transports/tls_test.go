package transports_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/transports"
)

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestTLSFilesClientConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)

	cfg, err := transports.TLSFiles{CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "broker.local"}.ClientConfig()
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
