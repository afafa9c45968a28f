package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/wire"
)

// The names below moved to package wire, the leaf package every transport
// imports; they stay here for one release so that code written against
// earlier versions keeps compiling.

// Failure is wire.Failure.
//
// Deprecated: use wire.Failure.
type Failure = wire.Failure

// ReadFailure is wire.ReadFailure.
//
// Deprecated: use wire.ReadFailure.
func ReadFailure(md message.Metadata) (Failure, error) { return wire.ReadFailure(md) }

// RetryTopic is wire.RetryTopic.
//
// Deprecated: use wire.RetryTopic.
func RetryTopic(topic, group string) string { return wire.RetryTopic(topic, group) }

// PoisonTopic is wire.PoisonTopic.
//
// Deprecated: use wire.PoisonTopic.
func PoisonTopic(topic, group string) string { return wire.PoisonTopic(topic, group) }

// Deprecated: the wire vocabulary moved to package wire.
const (
	PositionMetadataKey = wire.PositionMetadataKey
	ReasonMalformed     = wire.ReasonMalformed
	ReasonDecode        = wire.ReasonDecode
	MetaReplays         = wire.MetaReplays
	MetaTier            = wire.MetaTier
)
