package redis_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/busline/busline/transports/redis"
)

// childEnv, when set, makes the test binary run as a child consumer process
// (see runChild) instead of running tests.
const childEnv = "BUSLINE_REDIS_TEST_CHILD"

// runChild consumes CHILD_TOPIC as CHILD_GROUP, prints "handling <uuid>" for
// the first message and hangs without acking, until killed.
func runChild() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := redis.New(ctx, redis.Config{Addr: redisAddr(), Consumer: "crash-child", Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sub, err := tr.Subscriber(os.Getenv("CHILD_GROUP"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	msgs, err := sub.Subscribe(context.Background(), os.Getenv("CHILD_TOPIC"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	m := <-msgs
	fmt.Printf("handling %s\n", m.UUID)
	select {} // the handler never finishes: the parent kills this process
}
