package wire

// Metadata keys the failure pipeline adds to a message. They are the only
// metadata busline writes beyond the CloudEvents attributes, all under the
// busline_ prefix.
const (
	// MetaAttempts is the number of failed attempts so far, over every
	// retry and delayed redelivery.
	MetaAttempts = "busline_attempts"
	// MetaTier is the delayed-redelivery tier a message on a retry lane
	// belongs to: 1 for the first delay.
	MetaTier = "busline_tier"
	// MetaDue is when a message on a retry lane may be handled again
	// (RFC 3339 with nanoseconds, UTC).
	MetaDue = "busline_due"
	// MetaError is the text of the last error.
	MetaError = "busline_error"
	// MetaErrorType is the Go type of the last error, innermost first: the
	// type of the error at the end of its Unwrap chain.
	MetaErrorType = "busline_error_type"
	// MetaReason classifies the last failure: see the Reason constants.
	MetaReason = "busline_reason"
	// MetaGroup is the consumer group that failed to handle the message.
	MetaGroup = "busline_group"
	// MetaTopic is the topic the message was first consumed from.
	MetaTopic = "busline_topic"
	// MetaHandler is the name of the handler that failed.
	MetaHandler = "busline_handler"
	// MetaFirstFailure and MetaLastFailure are the times of the first and the
	// last failure (RFC 3339 with nanoseconds, UTC).
	MetaFirstFailure = "busline_first_failure"
	MetaLastFailure  = "busline_last_failure"
	// MetaPosition is the message's position in the transport where the
	// transport reports one (for example partition/offset on Kafka or the
	// stream entry id on Redis), copied from the key named by
	// PositionMetadataKey.
	MetaPosition = "busline_position"
	// MetaReplays counts how many times the message was replayed from the
	// poison lane.
	MetaReplays = "busline_replays"
)

// PositionMetadataKey is the metadata key a transport may set on consumed
// messages to report their position; the poison lane keeps it as
// MetaPosition.
const PositionMetadataKey = "busline_transport_position"

// Reasons recorded in MetaReason.
const (
	ReasonError     = "error"     // the handler returned an error
	ReasonPermanent = "permanent" // the handler returned a Permanent error
	ReasonDecode    = "decode"    // the payload could not be decoded
	ReasonPanic     = "panic"     // the handler panicked
	ReasonTimeout   = "timeout"   // the attempt ran out of time
	ReasonMalformed = "malformed" // the transport could not read the message
)
