package transports

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSFiles is the TLS client setup the broker transports read from their
// YAML sections (tls.ca_file, tls.cert_file, tls.key_file, tls.server_name,
// tls.insecure_skip_verify).
type TLSFiles struct {
	CAFile             string // PEM certificates of the authorities that sign the server's; empty: the system roots
	CertFile           string // PEM client certificate, with KeyFile; empty: none
	KeyFile            string // PEM key of CertFile
	ServerName         string // name checked in the server's certificate; empty: the dialled host
	InsecureSkipVerify bool   // skip verifying the server's certificate; for tests only
}

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
