package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// Delayed entries wait in a sorted set per destination stream, scored by
// their due time in Unix milliseconds of the Redis server, until a mover
// (run by the subscriptions of that stream) moves them into the stream. See
// the package documentation, "Delays".

// delayedSuffix ends the key of a stream's delayed set.
const delayedSuffix = ":delayed"

// maxScheduleArgs bounds the members one schedule script call adds.
const maxScheduleArgs = 1000

// scheduleScript adds members to the delayed set KEYS[1], due ARGV[1]
// milliseconds after the server's clock, rounded up to the next whole
// millisecond so that no entry is ever due early. NX keeps the first due
// time of a member stored twice (a retried call), so a retry stores nothing
// new. It returns the due score.
var scheduleScript = goredis.NewScript(scheduleSource)

const scheduleSource = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
local due = string.format('%.0f', now + tonumber(ARGV[1]))
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'NX', due, ARGV[i])
end
return due
`

// moveScript moves the due members of the delayed set KEYS[1] into the
// stream KEYS[2], at most ARGV[1] of them, each with an XADD and a ZREM, in
// one atomic step, so concurrent movers move each member exactly once.
// ARGV[2] is the trimming ("", "MAXLEN" or "MINID"), ARGV[3] "~" or "=",
// ARGV[4] the MAXLEN count or the MINID age in milliseconds. A member that
// does not parse is moved as one field, busline_delayed, which the
// subscription then poisons as malformed: nothing is stuck or lost. It
// returns {moved, next due score or "", server now in ms}.
var moveScript = goredis.NewScript(`
local function fields(m)
  local out, i, n = {}, 1, #m
  while i <= n do
    local c = string.find(m, ':', i, true)
    if not c then return nil end
    local len = tonumber(string.sub(m, i, c - 1))
    if not len or len < 0 or len % 1 ~= 0 or c + len > n then return nil end
    out[#out + 1] = string.sub(m, c + 1, c + len)
    i = c + len + 1
  end
  if #out < 3 or #out % 2 == 0 then return nil end
  table.remove(out, 1)
  return out
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local trim = {}
if ARGV[2] == 'MAXLEN' then
  trim = {'MAXLEN', ARGV[3], ARGV[4]}
elseif ARGV[2] == 'MINID' then
  trim = {'MINID', ARGV[3], string.format('%.0f', now - tonumber(ARGV[4])) .. '-0'}
end
for _, m in ipairs(due) do
  local args = {'XADD', KEYS[2]}
  for _, a in ipairs(trim) do args[#args + 1] = a end
  args[#args + 1] = '*'
  local vals = fields(m)
  if vals then
    for _, v in ipairs(vals) do args[#args + 1] = v end
  else
    args[#args + 1] = 'busline_delayed'
    args[#args + 1] = m
  end
  redis.call(unpack(args))
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or '', string.format('%.0f', now)}
`)

// DelayedKey returns the key of the sorted set where messages published
// with PublishDelayed to topic wait: "{<stream>}:delayed", hash-tagged so
// that in Redis Cluster it shares the stream's slot (or "<stream>:delayed"
// when the stream key has a hash tag of its own).
func (t *Transport) DelayedKey(topic string) string {
	key, _ := delayedKey(t.Stream(topic))
	return key
}

// delayedKey returns the delayed set of stream, and false when no key can
// share stream's cluster slot (stream holds a '}' but no hash tag).
func delayedKey(stream string) (string, bool) {
	if i := strings.IndexByte(stream, '{'); i >= 0 {
		if j := strings.IndexByte(stream[i+1:], '}'); j > 0 {
			return stream + delayedSuffix, true // hashed by stream's own tag
		}
	}
	return "{" + stream + "}" + delayedSuffix, !strings.Contains(stream, "}")
}

// PublishDelayed stores msgs in topic's delayed set, due delay after the
// Redis server's clock at the time it stores them, and returns once Redis
// did. A subscription of topic moves them into topic's stream once due (see
// the package documentation, "Delays"): they are then delivered to every
// group on the stream, as if published then, never earlier, and late by up
// to Config.DelayPoll when published by another process. A delay of zero or
// less publishes at once. Storing a message again (same UUID, metadata and
// payload) while its first copy waits keeps the first copy and its due
// time, so retrying a call that failed after Redis stored it delivers once.
// ctx bounds the call as it bounds Publish (see the package documentation,
// "Publishing"); the scripts of concurrent calls share pipelines with
// Publish's XADDs.
func (t *Transport) PublishDelayed(ctx context.Context, topic string, delay time.Duration, msgs ...*message.Message) error {
	if t.isClosed() {
		return ErrClosed
	}
	if topic == "" {
		return errors.New("redis transport: publish to an empty topic")
	}
	if delay <= 0 {
		return t.publish(ctx, topic, msgs)
	}
	if len(msgs) == 0 {
		return nil
	}
	key, ok := delayedKey(t.Stream(topic))
	if !ok && t.cluster() {
		return fmt.Errorf("redis transport: delayed publish to %s: the stream key %q holds a '}' without a hash tag, so no delayed set can share its cluster slot; drop the '}' from key_prefix or the topic", topic, t.Stream(topic))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis transport: delayed publish to %s: %w", key, err)
	}
	if err := transports.CheckSize(t.cfg.MaxMessageBytes, maxBytesHint, msgs...); err != nil {
		return fmt.Errorf("redis transport: delayed publish to %s: %w", key, err)
	}
	due := time.Now().Add(delay)
	ms := (delay + time.Millisecond - 1) / time.Millisecond
	var cmds []goredis.Cmder
	args := make([]any, 0, 5+min(len(msgs), maxScheduleArgs))
	for i, m := range msgs {
		member, err := delayedMember(m, t.cfg.WatermillCompatible)
		if err != nil {
			return fmt.Errorf("redis transport: publish %s to %s: %w", m.UUID, topic, err)
		}
		if len(args) == 0 {
			args = append(args, "evalsha", scheduleScript.Hash(), 1, key, int64(ms))
		}
		args = append(args, member)
		if len(args) == 5+maxScheduleArgs || i == len(msgs)-1 {
			cmds = append(cmds, goredis.NewCmd(ctx, args...))
			args = make([]any, 0, 5+min(len(msgs)-i-1, maxScheduleArgs))
		}
	}
	err := t.batcher.do(ctx, cmds)
	if err == nil {
		// A Redis that does not know the script yet (or any more, after a
		// restart) refuses EVALSHA with NOSCRIPT, having run nothing:
		// those calls go again as EVAL.
		var again []goredis.Cmder
		for i, c := range cmds {
			if e := c.Err(); e != nil && strings.HasPrefix(e.Error(), "NOSCRIPT") {
				args := slices.Clone(c.Args())
				args[0], args[1] = "eval", scheduleSource
				cmds[i] = goredis.NewCmd(ctx, args...)
				again = append(again, cmds[i])
			}
		}
		if len(again) > 0 {
			if err = t.batcher.do(ctx, again); err != nil && len(again) < len(cmds) {
				err = &inFlightError{err} // the other calls were executed
			}
		}
	}
	if err := t.outcome(ctx, "delayed publish to "+key, cmds, nil, err); err != nil {
		return err
	}
	t.kickMover(topic, due)
	return nil
}

// delayedMember encodes msg as a member of a delayed set: length-prefixed
// elements, "<len>:<bytes>", the message UUID first (which makes the member
// unique), then the stream entry's field-value pairs as Publish writes them.
func delayedMember(msg *message.Message, watermill bool) (string, error) {
	vals, err := encode(msg, watermill)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	put := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	put(msg.UUID)
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			put(v)
		case []byte:
			put(string(v))
		default:
			return "", fmt.Errorf("unexpected %T in an encoded entry", v)
		}
	}
	return b.String(), nil
}

// mover moves the due entries of one stream's delayed set into the stream.
// One runs per transport and topic while a subscription of the topic runs;
// the movers of several processes (and groups) may run at once, which is
// safe because each move is one atomic script.
type mover struct {
	t      *Transport
	topic  string
	stream string
	key    string
	refs   int // guarded by t.mu
	kick   chan struct{}
	wakeAt atomic.Int64 // UnixNano of the next planned move; 0 while moving
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// acquireMover starts topic's mover, or counts one more user of it.
func (t *Transport) acquireMover(topic string) *mover {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := t.movers[topic]; m != nil {
		m.refs++
		return m
	}
	key, ok := delayedKey(t.Stream(topic))
	ctx, cancel := context.WithCancel(context.Background())
	m := &mover{t: t, topic: topic, stream: t.Stream(topic), key: key, refs: 1, kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	t.movers[topic] = m
	if !ok && t.cluster() {
		close(m.done) // PublishDelayed refuses such a topic: nothing to move
		return m
	}
	go m.run()
	return m
}

// releaseMover stops m once its last user released it.
func (t *Transport) releaseMover(m *mover) {
	t.mu.Lock()
	m.refs--
	last := m.refs == 0
	if last {
		delete(t.movers, m.topic)
	}
	t.mu.Unlock()
	if last {
		m.cancel()
		<-m.done
	}
}

// kickMover wakes topic's mover in this transport, if one runs, when an
// entry stored due at due (on this clock) is due before the mover's next
// planned move, so that it sees the entry at once.
func (t *Transport) kickMover(topic string, due time.Time) {
	t.mu.Lock()
	m := t.movers[topic]
	t.mu.Unlock()
	if m == nil {
		return
	}
	if at := m.wakeAt.Load(); at != 0 && due.UnixNano() >= at {
		return // it moves by then anyway
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *mover) run() {
	defer close(m.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.kick:
		case <-timer.C:
		}
		m.wakeAt.Store(0)
		wait := m.moveDue()
		m.wakeAt.Store(time.Now().Add(wait).UnixNano())
		timer.Reset(wait)
	}
}

// moveDue moves every due entry, a batch at a time, and returns how long to
// wait before the next move: until the earliest entry left is due, at most
// DelayPoll, since another process may add an earlier one.
func (m *mover) moveDue() time.Duration {
	poll := m.t.cfg.DelayPoll
	for m.ctx.Err() == nil {
		moved, next, err := m.t.moveOnce(m.ctx, m.topic, m.key, m.t.cfg.BatchSize)
		if err != nil {
			if m.ctx.Err() == nil {
				m.t.cfg.Logger.Warn("redis transport: moving due delayed entries failed; retrying", "stream", m.stream, "set", m.key, "err", err, "retry_in", poll)
			}
			return poll
		}
		if moved < m.t.cfg.BatchSize {
			if next < 0 {
				return poll
			}
			return max(min(next, poll), time.Millisecond)
		}
	}
	return poll
}

// moveOnce runs moveScript once for topic's delayed set key: it returns how
// many entries it moved and how long until the earliest entry left is due
// (negative when none is left).
func (t *Transport) moveOnce(ctx context.Context, topic, key string, limit int) (moved int, next time.Duration, err error) {
	trim, approx, threshold := "", "=", int64(0)
	if !t.cfg.ExactTrim {
		approx = "~"
	}
	switch {
	case wire.IsLane(topic): // lanes are never trimmed
	case t.cfg.MaxLen > 0:
		trim, threshold = "MAXLEN", t.cfg.MaxLen
	case t.cfg.MinIDAge > 0:
		trim, threshold = "MINID", t.cfg.MinIDAge.Milliseconds()
	}
	res, err := moveScript.Run(ctx, t.client, []string{key, t.Stream(topic)}, limit, trim, approx, threshold).Slice()
	if err != nil {
		return 0, 0, t.redact(err)
	}
	if len(res) != 3 {
		return 0, 0, fmt.Errorf("move script returned %d values, want 3", len(res))
	}
	n, _ := res[0].(int64)
	nextS, _ := res[1].(string)
	nowS, _ := res[2].(string)
	if nextS == "" {
		return int(n), -1, nil
	}
	due, err1 := strconv.ParseFloat(nextS, 64)
	now, err2 := strconv.ParseFloat(nowS, 64)
	if err := errors.Join(err1, err2); err != nil {
		return int(n), -1, fmt.Errorf("move script returned %q and %q: %w", nextS, nowS, err)
	}
	return int(n), time.Duration(due-now) * time.Millisecond, nil
}

// cluster reports whether the transport talks to a Redis Cluster.
func (t *Transport) cluster() bool {
	_, ok := t.client.(*goredis.ClusterClient)
	return ok
}
