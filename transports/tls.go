package transports

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSFiles is the TLS client setup the broker transports read from their
// YAML sections: each transport's TLSConfig embeds it inline, so the keys
// are tls.ca_file, tls.cert_file, tls.key_file, tls.server_name and
// tls.insecure_skip_verify on every broker.
type TLSFiles struct {
	// CAFile is a PEM bundle of the authorities that sign the server's
	// certificate. Default: the system roots.
	CAFile string `yaml:"ca_file"`

	// CertFile and KeyFile are the PEM client certificate and its key, for
	// servers that verify clients. Both or neither. Default: none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	// ServerName is the name checked in the server's certificate.
	// Default: the dialled host.
	ServerName string `yaml:"server_name"`

	// InsecureSkipVerify skips verifying the server's certificate. For
	// tests only. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// IsZero reports whether f sets nothing.
func (f TLSFiles) IsZero() bool { return f == TLSFiles{} }

// ClientConfig builds a TLS 1.2+ client configuration from f. Its errors
// name the YAML key at fault (tls.ca_file, tls.cert_file/key_file).
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests only
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" || f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s and tls.key_file %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
