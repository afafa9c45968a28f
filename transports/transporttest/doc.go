// Package transporttest is the conformance suite every busline transport
// runs, in the manner of database/sql drivers' and gocloud's drivertest. It
// runs Watermill's universal Pub/Sub suite (pubsub/tests.TestPubSub) over the
// transport's publisher and subscribers, then busline's own behaviours
// through the typed API: round trip with metadata, fan-out across groups,
// competing consumers inside a group, per-key order, redelivery of failed
// messages, decode failures that never reach the handler, graceful shutdown
// that leaves unfinished messages for redelivery, idempotent Close and
// opening by kind from the registry.
//
// A transport's test calls Run with a Harness:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, transporttest.Harness{
//			Kind: "memory",
//			New:  func(t *testing.T) transports.Transport { return memory.New(memory.Config{}) },
//			Universal: tests.Features{ConsumerGroups: true, ...},
//		})
//	}
//
// Every case uses its own topics and groups, so cases run in parallel and a
// broker can be shared with other tests.
package transporttest
