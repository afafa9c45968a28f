package rabbitmq

import "github.com/busline/busline/transports"

// redactError returns err with the password of rawURL, and rawURL itself,
// removed from its text and from the texts of the errors it wraps.
func redactError(err error, rawURL string) error {
	return transports.RedactError(err, append(transports.URLSecrets(rawURL), rawURL)...)
}
