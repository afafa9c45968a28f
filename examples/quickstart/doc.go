// Command quickstart shows busline on the in-memory transport: one service
// publishes an event, two groups handle it, and one handler fails once and
// succeeds on its retry. It needs no broker:
//
//	go run ./examples/quickstart
package main
