package kafka

import "github.com/busline/busline/internal/redact"

// redact returns err with the transport's secrets (the SASL password)
// removed from its text and from the texts of the errors it wraps.
func (t *Transport) redact(err error) error {
	return redact.Error(err, t.secrets...)
}
