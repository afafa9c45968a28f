// Command rabbitmq runs busline on RabbitMQ: a checkout service publishes
// orders, billing and shipping each handle every order in their own durable
// queue, and shipping fails once on one order and succeeds on the retry.
// It needs a RabbitMQ broker (see README.md):
//
//	BUSLINE_RABBITMQ_URL=amqp://guest:guest@localhost:5672/ go run ./examples/rabbitmq
package main
