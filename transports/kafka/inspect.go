package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

var _ transports.Inspector = (*Transport)(nil)

// Groups returns the busline groups provisioned on topic, sorted: those
// whose Kafka consumer group on topic (KafkaGroup) has committed offsets
// on it. ProvisionGroup commits a partition's start for a group that has
// no offset there yet, so a group is listed from the moment the bus
// subscribed it, before it consumed anything. Groups reads only: it joins
// no group, commits nothing, and a topic that does not exist (it is not
// created) has none. It costs a topic lookup, a group listing and one
// offset fetch per group coordinator.
func (t *Transport) Groups(ctx context.Context, topic string) ([]string, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("kafka transport: groups of %q: %w", topic, t.redact(err))
	}
	adm := kadm.NewClient(t.admin)
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fail(err)
	}
	if td, ok := topics[topic]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return nil, nil
	} else if td.Err != nil {
		return fail(td.Err)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return fail(err)
	}
	names := listed.Groups()
	kafkaGroups := map[string]bool{}
	for _, n := range names {
		kafkaGroups[n] = true
	}
	var groups []string
	for _, r := range adm.FetchManyOffsets(ctx, names...) {
		if r.Err != nil {
			if errors.Is(r.Err, kerr.GroupIDNotFound) {
				continue // deleted since it was listed
			}
			return fail(fmt.Errorf("offsets of group %s: %w", r.Group, r.Err))
		}
		committed := false
		for _, o := range r.Fetched[topic] {
			committed = committed || o.Err == nil && o.At >= 0
		}
		if committed {
			groups = append(groups, buslineGroups(topic, r.Group, kafkaGroups)...)
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// buslineGroups returns the busline groups that consume topic as the Kafka
// group k: k itself, except where k is topic, a lane consumed as a group of
// its own (KafkaGroup), whose busline group is the name the lane ends in.
// As both topics and groups may hold dots, <topic>.<group>.retry splits in
// several ways; the groups that also exist as Kafka groups (that of the
// main topic) are chosen, else the last name.
func buslineGroups(topic, k string, exists map[string]bool) []string {
	if k != topic || !wire.IsLane(topic) {
		return []string{k}
	}
	rest := strings.TrimSuffix(strings.TrimSuffix(topic, wire.LaneRetrySuffix), wire.LanePoisonSuffix)
	var found []string
	last := ""
	for i := len(rest) - 1; i > 0; i-- {
		if rest[i] != '.' || i == len(rest)-1 {
			continue
		}
		g := rest[i+1:]
		if last == "" {
			last = g
		}
		if exists[g] {
			found = append(found, g)
		}
	}
	if len(found) == 0 && last != "" {
		found = []string{last}
	}
	return found
}

// Backlog reports group's backlog on topic: per partition, the end offset
// less the offset group's Kafka group (KafkaGroup) committed and the
// records its commit metadata lists as acked beyond it; plus, where topic
// has wait topics (a retry lane, or a topic of scheduled publishes), the
// records they hold that the mover has not moved yet. Oldest is the
// timestamp of the first record not acked on topic itself, read with a
// one-batch fetch per partition that has a backlog. A topic that does not
// exist, or on which group has no committed offset (never provisioned),
// has an empty backlog. Backlog reads only: it joins no group and commits
// nothing. It costs a topic listing (to find the wait topics), an offset
// fetch, two offset listings and those fetches.
func (t *Transport) Backlog(ctx context.Context, topic, group string) (transports.Backlog, error) {
	if t.isClosed() {
		return transports.Backlog{}, ErrClosed
	}
	fail := func(err error) (transports.Backlog, error) {
		return transports.Backlog{}, fmt.Errorf("kafka transport: backlog of %q for group %q: %w", topic, group, t.redact(err))
	}
	adm := kadm.NewClient(t.admin)
	all, err := adm.ListTopics(ctx) // every topic: topic and its wait topics
	if err != nil {
		return fail(err)
	}
	td, ok := all[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return transports.Backlog{}, nil
	} else if td.Err != nil {
		return fail(td.Err)
	}
	var waits []string
	for name := range all {
		if dest, _, ok := parseWaitTopic(name); ok && dest == topic {
			waits = append(waits, name)
		}
	}
	kgroup, mgroup := KafkaGroup(topic, group), MoverGroup(topic)
	groups := []string{kgroup}
	if len(waits) > 0 && mgroup != kgroup {
		groups = append(groups, mgroup)
	}
	fetched := adm.FetchManyOffsets(ctx, groups...)
	for _, r := range fetched {
		if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
			return fail(fmt.Errorf("offsets of group %s: %w", r.Group, r.Err))
		}
	}
	commits := fetched[kgroup].Fetched[topic]
	provisioned := false
	for _, o := range commits {
		provisioned = provisioned || o.Err == nil && o.At >= 0
	}
	if !provisioned {
		return transports.Backlog{}, nil
	}
	listed := append([]string{topic}, waits...)
	starts, err := adm.ListStartOffsets(ctx, listed...)
	if err != nil {
		return fail(err)
	}
	ends, err := adm.ListEndOffsets(ctx, listed...)
	if err != nil {
		return fail(err)
	}
	// lag is a partition's records from its group's committed offset (or
	// its start, without one) to its end; from is where they begin.
	lag := func(topic string, p int32, commit kadm.OffsetResponse, committed bool) (n, from int64, err error) {
		start, ok1 := starts.Lookup(topic, p)
		end, ok2 := ends.Lookup(topic, p)
		switch {
		case !ok1 || !ok2:
			return 0, 0, fmt.Errorf("no offsets listed for %s partition %d", topic, p)
		case start.Err != nil:
			return 0, 0, start.Err
		case end.Err != nil:
			return 0, 0, end.Err
		}
		from = start.Offset
		var acked int64
		if committed && commit.Err == nil && commit.At > from {
			from = commit.At
			a := newAcks()
			a.restore(commit.At, commit.Metadata)
			for off := range a.skip {
				if off < end.Offset {
					acked++
				}
			}
		}
		return max(0, end.Offset-from-acked), from, nil
	}
	var b transports.Backlog
	firsts := map[int32]int64{}
	for p := range td.Partitions {
		commit, ok := commits[p]
		n, from, err := lag(topic, p, commit, ok)
		if err != nil {
			return fail(err)
		}
		if n > 0 {
			b.Messages += n
			firsts[p] = from
		}
	}
	moved := fetched[mgroup].Fetched
	for _, w := range waits {
		for p := range all[w].Partitions {
			commit, ok := moved.Lookup(w, p)
			n, _, err := lag(w, p, commit, ok)
			if err != nil {
				return fail(err)
			}
			b.Messages += n
		}
	}
	b.Oldest = t.oldest(ctx, td, firsts)
	return b, nil
}

// oldest returns the earliest timestamp of the records of td at the
// offsets of at (one per partition), each read with a fetch of one batch
// from the partition's leader; zero where it cannot tell.
func (t *Transport) oldest(ctx context.Context, td kadm.TopicDetail, at map[int32]int64) time.Time {
	var oldest time.Time
	for p, offset := range at {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = 1 // the broker still returns the first batch whole
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = td.Topic, td.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, t.admin.Broker(int(td.Partitions[p].Leader)))
		if err != nil {
			continue
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					continue
				}
				if ts, ok := recordTime(rp.RecordBatches, offset); ok && (oldest.IsZero() || ts.Before(oldest)) {
					oldest = ts
				}
			}
		}
	}
	return oldest
}

// recordTime returns the timestamp of the record at offset in batches, raw
// record batches: exact where the batch is uncompressed or stamped by the
// broker (LogAppendTime), else the batch's first timestamp, at or before
// it.
func recordTime(batches []byte, offset int64) (time.Time, bool) {
	for len(batches) >= 12 {
		size := 12 + int(int32(uint32(batches[8])<<24|uint32(batches[9])<<16|uint32(batches[10])<<8|uint32(batches[11])))
		if size > len(batches) {
			return time.Time{}, false // truncated
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(batches[:size]); err != nil {
			return time.Time{}, false
		}
		batches = batches[size:]
		if b.FirstOffset+int64(b.LastOffsetDelta) < offset {
			continue
		}
		switch {
		case b.Attributes&0x08 != 0: // LogAppendTime: every record has the batch's
			return time.UnixMilli(b.MaxTimestamp), true
		case b.Attributes&0x07 != 0 || b.FirstOffset >= offset: // compressed, or its first record
			return time.UnixMilli(b.FirstTimestamp), true
		}
		records := b.Records
		for range b.NumRecords {
			var r kmsg.Record
			if err := r.ReadFrom(records); err != nil {
				break
			}
			if b.FirstOffset+int64(r.OffsetDelta) >= offset {
				return time.UnixMilli(b.FirstTimestamp + r.TimestampDelta64), true
			}
			records = records[uvarintLen(r.Length)+int(r.Length):]
		}
		return time.UnixMilli(b.FirstTimestamp), true
	}
	return time.Time{}, false
}

// uvarintLen is the length of n as a zig-zag varint.
func uvarintLen(n int32) int {
	u := uint32(n)<<1 ^ uint32(n>>31)
	l := 1
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}
