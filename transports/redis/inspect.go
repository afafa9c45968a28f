package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// Inspection reads streams, groups and delayed sets with XINFO, XPENDING,
// XRANGE and ZCARD only: it never creates a key or a group, never reads as
// a consumer (XREADGROUP), and never acks or claims.

// inspectPage is how many entries one XRANGE or XPENDING of an inspection
// reads.
const inspectPage = 1000

// Groups returns the consumer groups of topic's stream (XINFO GROUPS),
// sorted. A stream that does not exist has none; nothing is created.
func (t *Transport) Groups(ctx context.Context, topic string) ([]string, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	infos, err := t.groupInfos(ctx, t.Stream(topic))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(infos))
	for _, g := range infos {
		names = append(names, g.Name)
	}
	slices.Sort(names)
	return names, nil
}

// TopicExists reports whether topic's stream exists (EXISTS): a topic
// that was published to, or that a group was provisioned on. It creates
// nothing.
func (t *Transport) TopicExists(ctx context.Context, topic string) (bool, error) {
	if t.isClosed() {
		return false, ErrClosed
	}
	n, err := t.client.Exists(ctx, t.Stream(topic)).Result()
	if err != nil {
		return false, t.redact(fmt.Errorf("redis transport: EXISTS %s: %w", t.Stream(topic), err))
	}
	return n > 0, nil
}

// Backlog reports what group has not acked on topic: the entries not yet
// delivered to it (XINFO GROUPS lag, or a count of the entries after its
// last-delivered-id where Redis does not report the lag), its pending
// entries, and the members of the topic's delayed set (messages scheduled
// to the topic, such as a retry lane's redeliveries, which every group of
// the stream receives once due). Oldest is the ce_time of the oldest entry
// in the stream not acked by the group, or the time in its id when it has
// none; delayed members do not count for it. A stream or group that does
// not exist has an empty backlog; nothing is created.
func (t *Transport) Backlog(ctx context.Context, topic, group string) (transports.Backlog, error) {
	if t.isClosed() {
		return transports.Backlog{}, ErrClosed
	}
	stream := t.Stream(topic)
	g, ok, err := t.groupInfo(ctx, stream, group)
	if err != nil || !ok {
		return transports.Backlog{}, err
	}
	var b transports.Backlog
	undelivered := g.Lag
	var first string // the first undelivered entry, when counted
	if undelivered <= 0 {
		// -1: Redis cannot tell (entries deleted or trimmed); 0: Redis
		// 6.2, which has no lag, or nothing left, which XRANGE confirms
		// in one short reply.
		undelivered, first, err = t.countAfter(ctx, stream, g.LastDeliveredID)
		if err != nil {
			return transports.Backlog{}, err
		}
	}
	b.Messages = undelivered + g.Pending
	if key, ok := delayedKey(stream); ok || !t.cluster() {
		n, err := t.client.ZCard(ctx, key).Result()
		if err != nil {
			return transports.Backlog{}, t.redact(fmt.Errorf("redis transport: ZCARD %s: %w", key, err))
		}
		b.Messages += n
	}
	oldest := ""
	switch {
	case g.Pending > 0:
		sum, err := t.client.XPending(ctx, stream, group).Result()
		if err != nil && !isNoGroup(err) {
			return transports.Backlog{}, t.redact(fmt.Errorf("redis transport: XPENDING %s %s: %w", stream, group, err))
		}
		if sum != nil {
			oldest = sum.Lower
		}
	case first != "":
		oldest = first
	case undelivered > 0:
		oldest = "(" + g.LastDeliveredID
	}
	if oldest != "" {
		b.Oldest, err = t.entryTime(ctx, stream, oldest)
		if err != nil {
			return transports.Backlog{}, err
		}
	}
	return b, nil
}

// Browse returns copies of the messages waiting for group on topic, oldest
// first, at most limit of them (limit <= 0: all): its pending entries
// (delivered and not acked: XPENDING, then XRANGE by id) and then the
// entries after its last-delivered-id. Each is decoded as the subscription
// decodes it, with the entry id as metadata wire.PositionMetadataKey.
// Entries a subscription would not hand out are left out: one deleted
// while pending, and one it cannot read (which it moves to the poison
// lane). Browse reads only: it neither consumes (no XREADGROUP) nor acks
// nor claims, so the messages stay where they are, and acking a copy does
// nothing. A stream or group that does not exist has none.
func (t *Transport) Browse(ctx context.Context, topic, group string, limit int) ([]*message.Message, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	stream := t.Stream(topic)
	g, ok, err := t.groupInfo(ctx, stream, group)
	if err != nil || !ok {
		return nil, err
	}
	var out []*message.Message
	full := func() bool { return limit > 0 && len(out) >= limit }
	add := func(entries []goredis.XMessage) {
		for _, e := range entries {
			if full() {
				return
			}
			if e.Values == nil {
				continue
			}
			if msg, err := decode(e); err == nil {
				out = append(out, msg)
			}
		}
	}
	for start := "-"; g.Pending > 0 && !full(); {
		pend, err := t.client.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: stream, Group: group, Start: start, End: "+", Count: inspectPage}).Result()
		if isNoGroup(err) {
			return out, nil
		}
		if err != nil {
			return nil, t.redact(fmt.Errorf("redis transport: XPENDING %s %s: %w", stream, group, err))
		}
		if len(pend) == 0 {
			break
		}
		pipe := t.client.Pipeline()
		cmds := make([]*goredis.XMessageSliceCmd, len(pend))
		for i, p := range pend {
			cmds[i] = pipe.XRange(ctx, stream, p.ID, p.ID)
		}
		if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
			return nil, t.redact(fmt.Errorf("redis transport: XRANGE of pending entries of %s: %w", stream, err))
		}
		for _, c := range cmds {
			add(c.Val())
		}
		if len(pend) < inspectPage {
			break
		}
		start = "(" + pend[len(pend)-1].ID
	}
	for start := "(" + g.LastDeliveredID; !full(); {
		count := int64(inspectPage)
		if limit > 0 {
			count = int64(min(inspectPage, limit-len(out)))
		}
		entries, err := t.client.XRangeN(ctx, stream, start, "+", count).Result()
		if err != nil {
			return nil, t.redact(fmt.Errorf("redis transport: XRANGE %s: %w", stream, err))
		}
		add(entries)
		if int64(len(entries)) < count {
			break
		}
		start = "(" + entries[len(entries)-1].ID
	}
	return out, nil
}

// groupInfos returns XINFO GROUPS of stream; none for a stream that does
// not exist.
func (t *Transport) groupInfos(ctx context.Context, stream string) ([]goredis.XInfoGroup, error) {
	infos, err := t.client.XInfoGroups(ctx, stream).Result()
	if isNoSuchKey(err) {
		return nil, nil
	}
	if err != nil {
		return nil, t.redact(fmt.Errorf("redis transport: XINFO GROUPS %s: %w", stream, err))
	}
	return infos, nil
}

// groupInfo returns group's entry of XINFO GROUPS on stream, and false when
// the stream or the group does not exist.
func (t *Transport) groupInfo(ctx context.Context, stream, group string) (goredis.XInfoGroup, bool, error) {
	infos, err := t.groupInfos(ctx, stream)
	if err != nil {
		return goredis.XInfoGroup{}, false, err
	}
	for _, g := range infos {
		if g.Name == group {
			return g, true, nil
		}
	}
	return goredis.XInfoGroup{}, false, nil
}

// countAfter counts the entries of stream after id, a page at a time, and
// returns the first of them.
func (t *Transport) countAfter(ctx context.Context, stream, id string) (n int64, first string, err error) {
	for start := "(" + id; ; {
		entries, err := t.client.XRangeN(ctx, stream, start, "+", inspectPage).Result()
		if err != nil {
			return 0, "", t.redact(fmt.Errorf("redis transport: XRANGE %s: %w", stream, err))
		}
		if len(entries) > 0 && first == "" {
			first = entries[0].ID
		}
		n += int64(len(entries))
		if len(entries) < inspectPage {
			return n, first, nil
		}
		start = "(" + entries[len(entries)-1].ID
	}
}

// entryTime returns when the first entry of stream from start on was
// published: its ce_time, or else the milliseconds of its id. Zero when
// there is no such entry.
func (t *Transport) entryTime(ctx context.Context, stream, start string) (time.Time, error) {
	entries, err := t.client.XRangeN(ctx, stream, start, "+", 1).Result()
	if err != nil {
		return time.Time{}, t.redact(fmt.Errorf("redis transport: XRANGE %s: %w", stream, err))
	}
	if len(entries) == 0 {
		return time.Time{}, nil
	}
	e := entries[0]
	if s, ok := e.Values[wire.MetaTime].(string); ok {
		if at, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return at, nil
		}
	}
	return idTime(e.ID), nil
}

// idTime returns the time in a stream entry id, "<ms>-<seq>"; zero for an
// id that has none.
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// isNoSuchKey reports whether err is Redis's reply to XINFO on a key that
// does not exist.
func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}
