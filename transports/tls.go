package transports

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSConfig is the TLS client setup of every broker transport: the
// rabbitmq, redis and kafka packages' TLSConfig are this type, so the YAML
// keys under tls: are the same on every broker (enabled, ca_file,
// cert_file, key_file, server_name, insecure_skip_verify).
type TLSConfig struct {
	// Enabled turns TLS on. It is implied by any other field, and by a
	// URL whose scheme asks for TLS (amqps://, rediss://). Default: false.
	Enabled bool `yaml:"enabled"`

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

	// Config, when set, is used as it is and the other fields are ignored.
	// It cannot be set from YAML, and no encoder or fmt verb shows what it
	// holds (its private keys): it is left out of JSON and YAML and prints
	// as a pointer.
	Config *tls.Config `yaml:"-" json:"-"`
}

// On reports whether t turns TLS on: Enabled, or any other field set.
func (t TLSConfig) On() bool {
	return t.Enabled || t.Config != nil || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// ClientConfig returns t.Config when it is set, or else builds a TLS 1.2+
// client configuration from the file fields. Its errors name the YAML key
// at fault (tls.ca_file, tls.cert_file/key_file).
func (t TLSConfig) ClientConfig() (*tls.Config, error) {
	if t.Config != nil {
		return t.Config, nil
	}
	f := t
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
