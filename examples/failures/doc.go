// Command failures walks through busline's failure pipeline on the in-memory
// transport: immediate retries, a delayed redelivery that does not block the
// stream, a permanent failure parked in the poison lane, and its replay once
// the handler is fixed.
//
//	go run ./examples/failures
package main
