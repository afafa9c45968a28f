package redis

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/wire"
)

type publisher struct {
	t      *Transport
	closed chan struct{}
	once   sync.Once
}

// Publish appends msgs to topic's stream and returns once Redis stored them
// all. The XADDs of concurrent Publish calls share pipelines (see batcher).
// On error, some of msgs may be stored.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	return p.t.publish(topic, msgs)
}

// publish appends msgs to topic's stream through the batcher.
func (t *Transport) publish(topic string, msgs []*message.Message) error {
	if topic == "" {
		return fmt.Errorf("redis transport: publish to an empty topic")
	}
	if len(msgs) == 0 {
		return nil
	}
	stream := t.Stream(topic)
	args := make([]*goredis.XAddArgs, len(msgs))
	for i, m := range msgs {
		vals, err := encode(m)
		if err != nil {
			return fmt.Errorf("redis transport: publish %s to %s: %w", m.UUID, topic, err)
		}
		args[i] = t.xaddArgs(topic, vals)
	}
	cmds, err := t.batcher.do(args)
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	if err != nil {
		return t.redact(fmt.Errorf("redis transport: publish to %s: %w%s", stream, err, oomHint(err)))
	}
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			return t.redact(fmt.Errorf("redis transport: publish %s to %s: %w%s", msgs[i].UUID, stream, err, oomHint(err)))
		}
	}
	return nil
}

// xaddArgs is the XADD of vals to topic's stream, with the configured
// trimming unless topic is a lane.
func (t *Transport) xaddArgs(topic string, vals []any) *goredis.XAddArgs {
	a := &goredis.XAddArgs{Stream: t.Stream(topic), Values: vals, Approx: !t.cfg.ExactTrim}
	switch {
	case wire.IsLane(topic): // lanes are never trimmed
		a.Approx = false
	case t.cfg.MaxLen > 0:
		a.MaxLen = t.cfg.MaxLen
	case t.cfg.MinIDAge > 0:
		a.MinID = strconv.FormatInt(time.Now().Add(-t.cfg.MinIDAge).UnixMilli(), 10) + "-0"
	default:
		a.Approx = false
	}
	return a
}

// Close releases the publisher; the transport stays open.
func (p *publisher) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}
