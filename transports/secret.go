package transports

import (
	"fmt"
	"log/slog"

	"github.com/busline/busline/internal/redact"
)

// redacted is what a secret prints as.
const redacted = "xxxxx"

// Secret is a configuration value that must never be printed, such as a
// password: every fmt verb, slog handler and JSON, YAML or text encoder sees
// "xxxxx" (or "" when it is empty). Reveal returns the value, for the one
// place that hands it to a client library.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String returns "xxxxx", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format prints String for every verb, so that %x or %q print no secret
// either.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// LogValue is String, for slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText is String, for encoding/json, encoding/xml and any encoder of
// text values.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML is String, for gopkg.in/yaml.v3.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalText reads a secret, which MarshalText would not give back.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// SecretURL is a URL that may hold a password (amqp://user:pass@host/):
// everything that prints it sees redact.URL's form, with the password
// replaced by "xxxxx", whether or not it parses. Reveal returns it whole.
type SecretURL string

// Reveal returns the URL itself, password included.
func (u SecretURL) Reveal() string { return string(u) }

// String returns the URL with its password redacted.
func (u SecretURL) String() string { return redact.URL(string(u)) }

// GoString is String, quoted, for %#v.
func (u SecretURL) GoString() string { return fmt.Sprintf("%q", u.String()) }

// Format prints String for every verb.
func (u SecretURL) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q':
		fmt.Fprintf(f, "%q", u.String())
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, u.GoString())
	default:
		fmt.Fprint(f, u.String())
	}
}

// LogValue is String, for slog.
func (u SecretURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalText is String, for encoders of text values.
func (u SecretURL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// MarshalYAML is String, for gopkg.in/yaml.v3.
func (u SecretURL) MarshalYAML() (any, error) { return u.String(), nil }

// UnmarshalText reads a URL, which MarshalText would not give back.
func (u *SecretURL) UnmarshalText(b []byte) error {
	*u = SecretURL(b)
	return nil
}
