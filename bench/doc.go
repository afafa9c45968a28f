// Command bench measures busline against plain Watermill and the raw broker
// clients, on the same work in one run, and writes the table to
// bench/RESULTS.md.
//
//	go run ./bench                        # full: 3 runs, every transport
//	go run ./bench -quick                 # under 2 minutes
//	go run ./bench -transports memory,redis -out /tmp/r.md
//	go run ./bench -quick -cpuprofile cpu.out -transports rabbitmq -ways busline
//
// RabbitMQ and Redis must run on loopback (make brokers), or at
// $BUSLINE_RABBITMQ_URL and $BUSLINE_REDIS_ADDR; Kafka is an in-process
// kfake cluster unless $BUSLINE_KAFKA_BROKERS names brokers. A transport
// whose broker is not reachable is reported as not measured. See
// bench/README.md for what each column means.
package main
