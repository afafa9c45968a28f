// Command kafka shows busline on Kafka, configured from YAML: a checkout
// service publishes orders keyed by customer, billing handles them in order
// per customer, and one payment fails once and comes back from the retry
// lane topic a second later while the other orders go on.
//
// It needs a Kafka broker; without one, start the development broker:
//
//	go run ./cmd/devkafka &
//	go run ./examples/kafka
//
// BUSLINE_KAFKA_BROKERS (host:port) points it at another broker.
package main
