package rabbitmq

import (
	"strings"

	"github.com/busline/busline/wire"
)

// isLane reports whether topic is a retry or poison lane (wire.IsLane).
// Publishes to a lane are mandatory: a lane message that no queue takes is
// a failed publish, never a silent drop.
func isLane(topic string) bool { return wire.IsLane(topic) }

// isLaneOf reports whether topic is one of group's lanes (of any topic):
// its queue never expires and is re-declared before publishing to it.
func isLaneOf(topic, group string) bool {
	for _, lane := range []string{wire.RetryTopic("", group), wire.PoisonTopic("", group)} {
		if len(topic) > len(lane) && strings.HasSuffix(topic, lane) {
			return true
		}
	}
	return false
}
