package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/busline/busline/internal/redact"

	goredis "github.com/redis/go-redis/v9"
)

// ErrClosed is returned when publishing or subscribing through a closed
// transport, publisher or subscriber.
var ErrClosed = errors.New("redis transport: closed")

// GroupLostError is what Health reports after a consumer group vanished
// (Redis restarted without persistence, stream deleted, FLUSHALL) and was
// recreated. Entries that were in the lost data are gone for the group.
type GroupLostError struct {
	Stream string    // the stream key
	Group  string    // the consumer group
	At     time.Time // when the loss was detected
	Err    error     // the error that revealed it (NOGROUP)
}

// Error says what was lost and how to prevent it.
func (e *GroupLostError) Error() string {
	return fmt.Sprintf("redis transport: consumer group %s on stream %s was lost at %s and recreated (%v): entries published before the loss and not yet handled are gone; enable persistence (appendonly yes) to prevent this",
		e.Group, e.Stream, e.At.Format(time.RFC3339), e.Err)
}

// Unwrap returns the error that revealed the loss.
func (e *GroupLostError) Unwrap() error { return e.Err }

// MalformedEntryError says why an entry could not be read as a message. It
// is the error recorded with the entry on the poison lane.
type MalformedEntryError struct {
	ID     string // the stream entry id
	Reason string
}

// Error names the entry and why it could not be read.
func (e *MalformedEntryError) Error() string {
	return fmt.Sprintf("redis transport: malformed stream entry %s: %s", e.ID, e.Reason)
}

// isOOM reports whether err is Redis's refusal of a write at maxmemory
// ("OOM command not allowed when used memory > 'maxmemory'").
func isOOM(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "OOM ")
}

// oomHint is what to add to an error that is Redis's OOM refusal: what
// frees memory. Empty for any other error.
func oomHint(err error) string {
	if !isOOM(err) {
		return ""
	}
	return " (Redis is at maxmemory with the noeviction policy and refuses writes, so nothing was stored; consumers still run and drain: trim the streams (max_len, min_id_age) or raise maxmemory to make room)"
}

// redact returns err with every credential of the configuration removed
// from its text and from the texts of the errors it wraps.
func (t *Transport) redact(err error) error {
	return redact.Error(err, t.secrets...)
}

// connectError is New's error for a PING that failed: it names the server
// and says what to check, by the kind of failure.
func connectError(cfg *Config, err error) error {
	if hint := connectHint(cfg, err); hint != "" {
		return fmt.Errorf("redis transport: cannot reach Redis at %s: %w (%s)", cfg.target(), err, hint)
	}
	return fmt.Errorf("redis transport: cannot reach Redis at %s: %w", cfg.target(), err)
}

// connectHint says what to check after err, a failure to connect and PING;
// empty when it has nothing to say.
func connectHint(cfg *Config, err error) string {
	tlsOn := cfg.TLS.Enabled || strings.HasPrefix(cfg.URL.Reveal(), "rediss:")
	var (
		record   tls.RecordHeaderError
		alert    tls.AlertError
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		dns      *net.DNSError
		netErr   net.Error
	)
	switch {
	case goredis.IsAuthError(err) || strings.Contains(err.Error(), "without any password configured"):
		return "Redis refused the credentials: check transport.redis.username and password, or those of transport.redis.url"
	case goredis.IsPermissionError(err):
		return "the ACL user may not run PING or the stream commands busline needs: check its ACL rules"
	case errors.As(err, &record):
		return "TLS handshake failed, the server does not speak TLS on this port: check the TLS settings (transport.redis.tls.enabled, a rediss:// url) and the port"
	case errors.As(err, &alert), errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid),
		strings.Contains(err.Error(), "tls: "), strings.Contains(err.Error(), "x509: "):
		return "TLS failed: check the TLS settings, transport.redis.tls ca_file, cert_file, key_file and server_name (the server's certificate must be signed by ca_file and name the host)"
	case !tlsOn && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return "the server closed the connection: if it requires TLS, check the TLS settings (set transport.redis.tls.enabled or use a rediss:// url)"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded), errors.As(err, &dns),
		errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "is redis-server running? start one with `make brokers` (scripts/brokers.sh), or set transport.redis.addr / " + EnvAddr
	}
	return ""
}
