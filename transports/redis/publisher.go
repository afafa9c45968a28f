package redis

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
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
	if topic == "" {
		return fmt.Errorf("redis transport: publish to an empty topic")
	}
	if len(msgs) == 0 {
		return nil
	}
	stream := p.t.Stream(topic)
	args := make([]*goredis.XAddArgs, len(msgs))
	for i, m := range msgs {
		vals, err := encode(m)
		if err != nil {
			return fmt.Errorf("redis transport: publish %s to %s: %w", m.UUID, topic, err)
		}
		args[i] = p.t.xaddArgs(stream, vals)
	}
	cmds, err := p.t.batcher.do(args)
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	if err != nil {
		return p.t.redact(fmt.Errorf("redis transport: publish to %s: %w", stream, err))
	}
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			return p.t.redact(fmt.Errorf("redis transport: publish %s to %s: %w", msgs[i].UUID, stream, err))
		}
	}
	return nil
}

// xaddArgs applies the configured trimming.
func (t *Transport) xaddArgs(stream string, vals []any) *goredis.XAddArgs {
	a := &goredis.XAddArgs{Stream: stream, Values: vals, Approx: !t.cfg.ExactTrim}
	switch {
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
