// Command devkafka runs a development Kafka broker in one process: kfake
// from franz-go, which speaks the real Kafka protocol over TCP. It is for
// trying busline's Kafka transport and examples where no Kafka runs; it is
// not a production broker.
//
//	go run ./cmd/devkafka                 # 127.0.0.1:9092, in memory
//	go run ./cmd/devkafka -data /tmp/kfk  # keeps topics and offsets across restarts
//
// Topics are created on first use with -partitions partitions. Stop it with
// Ctrl-C.
package main
