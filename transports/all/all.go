package all

import (
	_ "github.com/busline/busline/transports/kafka"    // kind "kafka"
	_ "github.com/busline/busline/transports/memory"   // kind "memory"
	_ "github.com/busline/busline/transports/rabbitmq" // kind "rabbitmq"
	_ "github.com/busline/busline/transports/redis"    // kind "redis"
)
