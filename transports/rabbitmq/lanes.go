package rabbitmq

import (
	"strings"

	"github.com/busline/busline/middleware"
)

// laneSuffixes end the topics of the failure pipeline's lanes:
// middleware.RetryTopic and middleware.PoisonTopic, without a topic or
// group (".retry", ".poison").
var laneSuffixes = []string{
	strings.TrimPrefix(middleware.RetryTopic("", ""), "."),
	strings.TrimPrefix(middleware.PoisonTopic("", ""), "."),
}

// isLane reports whether topic is a retry or poison lane. Publishes to a
// lane are mandatory: a lane message that no queue takes is a failed
// publish, never a silent drop.
func isLane(topic string) bool {
	for _, s := range laneSuffixes {
		if strings.HasSuffix(topic, s) {
			return true
		}
	}
	return false
}

// isLaneOf reports whether topic is one of group's lanes (of any topic):
// its queue never expires and is re-declared before publishing to it.
func isLaneOf(topic, group string) bool {
	for _, lane := range []string{middleware.RetryTopic("", group), middleware.PoisonTopic("", group)} {
		if len(topic) > len(lane) && strings.HasSuffix(topic, lane) {
			return true
		}
	}
	return false
}
