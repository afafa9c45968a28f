package rabbitmq

import "github.com/busline/busline/internal/redact"

// redactError returns err with the password of rawURL, and rawURL itself,
// removed from its text and from the texts of the errors it wraps.
func redactError(err error, rawURL string) error {
	return redact.Error(err, append(redact.URLSecrets(rawURL), rawURL)...)
}
