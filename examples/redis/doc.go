// Command redis is a busline app on Redis Streams: it publishes three
// orders.placed events and a billing handler handles them.
//
//	BUSLINE_REDIS_ADDR=127.0.0.1:6379 go run ./examples/redis
package main
