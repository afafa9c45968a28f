package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

type publisher struct {
	t      *Transport
	closed chan struct{}
	once   sync.Once
}

// Publish appends msgs to topic's stream and returns once Redis stored them
// all. The context of msgs[0] bounds the call (see the package
// documentation, "Publishing"). The XADDs of concurrent Publish calls share
// pipelines (see batcher); after an error that wraps
// transports.ErrMaybeSent that pipeline may still be writing msgs' payloads,
// so do not modify them.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	if len(msgs) == 0 {
		return nil
	}
	return p.t.publish(msgs[0].Context(), topic, msgs)
}

// publish appends msgs to topic's stream through the batcher, within ctx.
func (t *Transport) publish(ctx context.Context, topic string, msgs []*message.Message) error {
	if topic == "" {
		return fmt.Errorf("redis transport: publish to an empty topic")
	}
	if len(msgs) == 0 {
		return nil
	}
	stream := t.Stream(topic)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis transport: publish to %s: %w", stream, err)
	}
	if err := transports.CheckSize(t.cfg.MaxMessageBytes, maxBytesHint, msgs...); err != nil {
		return fmt.Errorf("redis transport: publish to %s: %w", stream, err)
	}
	cmds := make([]goredis.Cmder, len(msgs))
	for i, m := range msgs {
		vals, err := encode(m, t.cfg.WatermillCompatible)
		if err != nil {
			return fmt.Errorf("redis transport: publish %s to %s: %w", m.UUID, topic, err)
		}
		cmds[i] = t.xadd(ctx, topic, vals)
	}
	return t.send(ctx, "publish to "+stream, cmds, func(i int) string { return "message " + msgs[i].UUID })
}

// xadd is the XADD of vals to topic's stream, with the configured trimming
// unless topic is a lane.
func (t *Transport) xadd(ctx context.Context, topic string, vals []any) *goredis.StringCmd {
	args := make([]any, 0, 6+len(vals))
	args = append(args, "xadd", t.Stream(topic))
	approx := "~"
	if t.cfg.ExactTrim {
		approx = "="
	}
	switch {
	case wire.IsLane(topic): // lanes are never trimmed
	case t.cfg.MaxLen > 0:
		args = append(args, "maxlen", approx, t.cfg.MaxLen)
	case t.cfg.MinIDAge > 0:
		args = append(args, "minid", approx, strconv.FormatInt(time.Now().Add(-t.cfg.MinIDAge).UnixMilli(), 10)+"-0")
	}
	args = append(args, "*")
	return goredis.NewStringCmd(ctx, append(args, vals...)...)
}

// send runs cmds through the batcher within ctx and returns nil once Redis
// executed them all. Its error wraps transports.ErrMaybeSent unless none of
// cmds was executed for sure: each was refused by Redis (an error reply such
// as OOM) or never sent (ctx ended first, no connection could be made).
// what names the call in the error, and name(i) command i.
func (t *Transport) send(ctx context.Context, what string, cmds []goredis.Cmder, name func(i int) string) error {
	return t.outcome(ctx, what, cmds, name, t.batcher.do(ctx, cmds))
}

// outcome is send's error for cmds after the batcher's error err.
func (t *Transport) outcome(ctx context.Context, what string, cmds []goredis.Cmder, name func(i int) string, err error) error {
	var unsent *unsentError
	switch {
	case errors.Is(err, ErrClosed):
		return ErrClosed
	case errors.As(err, &unsent):
		return fmt.Errorf("redis transport: %s: %w", what, unsent.err)
	case err != nil:
		return transports.MaybeSent(fmt.Errorf("redis transport: %s: %w (sent; Redis had not answered)", what, err))
	}
	failed, maybe := -1, false
	for i, c := range cmds {
		cerr := c.Err()
		switch {
		case cerr == nil:
			maybe = true // executed: its neighbours' failure leaves it stored
			continue
		case isReply(cerr), neverSent(cerr):
		default:
			maybe = true
		}
		if failed < 0 {
			failed = i
		}
	}
	if failed < 0 {
		return nil
	}
	cerr := cmds[failed].Err()
	if name != nil {
		what = fmt.Sprintf("%s (%s)", what, name(failed))
	}
	if ctxErr := deadlineErr(ctx); ctxErr != nil && !errors.Is(cerr, ctxErr) {
		err = fmt.Errorf("redis transport: %s: %w: %w", what, ctxErr, cerr) // the deadline cut the read short
	} else {
		err = fmt.Errorf("redis transport: %s: %w%s", what, cerr, oomHint(cerr))
	}
	err = t.redact(err)
	if maybe {
		return transports.MaybeSent(err)
	}
	return err
}

// deadlineErr returns ctx's error, or context.DeadlineExceeded once its
// deadline passed: the socket deadline the pipeline ran with may fire an
// instant before ctx's timer does.
func deadlineErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// isReply reports whether err is an error reply of Redis: the command was
// refused, and changed nothing.
func isReply(err error) bool {
	var reply goredis.Error
	return errors.As(err, &reply)
}

// neverSent reports whether err proves that its command never left the
// process: no connection could be made (a failed dial) or taken (the pool's
// timeout), or the client is closed. A failure on a connection that was made
// (a lost reply, a timeout, a failed handshake) proves nothing.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" ||
		errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrPoolExhausted) || errors.Is(err, goredis.ErrClosed)
}

// Close releases the publisher; the transport stays open.
func (p *publisher) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}
