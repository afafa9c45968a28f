package wire

import "strings"

// RetryTopic is the topic of group's retry lane for messages of topic: the
// lane where delayed redeliveries of every tier, and replays from the poison
// lane, arrive once they are due. Only group consumes it.
func RetryTopic(topic, group string) string {
	return topic + "." + group + LaneRetrySuffix
}

// PoisonTopic is the topic of group's poison lane for messages of topic.
func PoisonTopic(topic, group string) string {
	return topic + "." + group + LanePoisonSuffix
}

// The suffixes that end lane topics. Transports use them to treat lanes
// apart from main topics: a lane is never trimmed or expired, and a lane
// publish that the broker cannot route is a failed publish.
const (
	LaneRetrySuffix  = ".retry"
	LanePoisonSuffix = ".poison"
)

// IsLane reports whether topic is a retry or poison lane by its name.
func IsLane(topic string) bool {
	return strings.HasSuffix(topic, LaneRetrySuffix) || strings.HasSuffix(topic, LanePoisonSuffix)
}
