package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/busline/transports"
)

var _ transports.Browser = (*Transport)(nil)

// Browse returns up to limit of the messages waiting for group on topic,
// oldest first (limit <= 0: all): the records from the offset group's Kafka
// group (KafkaGroup) committed on each partition to the end of the
// partition, less those the commit metadata lists as acked. It reads the
// partitions directly, joining no consumer group and committing nothing,
// so a lane can be listed while its group consumes. The messages are
// copies: acking them does nothing. A topic that does not exist has none.
func (t *Transport) Browse(ctx context.Context, topic, group string, limit int) ([]*message.Message, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	fail := func(err error) ([]*message.Message, error) {
		return nil, fmt.Errorf("kafka transport: browse %q for group %q: %w", topic, group, t.redact(err))
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, t.cl)
	if err != nil {
		return fail(err)
	}
	var partitions []int32
	for _, rt := range mresp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, nil
		} else if err != nil {
			return fail(err)
		}
		for _, rp := range rt.Partitions {
			partitions = append(partitions, rp.Partition)
		}
	}
	if len(partitions) == 0 {
		return nil, nil
	}
	// Where the group stands on each partition.
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Group = KafkaGroup(topic, group)
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = topic, partitions
	freq.Topics = append(freq.Topics, ft)
	fresp, err := freq.RequestWith(ctx, t.cl)
	if err != nil {
		return fail(err)
	}
	if err := kerr.ErrorForCode(fresp.ErrorCode); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fail(err)
	}
	from := map[int32]*acks{}
	for _, rt := range fresp.Topics {
		for _, rp := range rt.Partitions {
			a := newAcks()
			if rp.Metadata != nil {
				a.restore(rp.Offset, *rp.Metadata)
			}
			a.next = rp.Offset // -1: nothing committed, from the start
			from[rp.Partition] = &a
		}
	}
	// Where each partition starts and ends.
	listOffsets := func(timestamp int64) (map[int32]int64, error) {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, p := range partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, timestamp
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, t.cl)
		if err != nil {
			return nil, err
		}
		offsets := map[int32]int64{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return nil, err
				}
				offsets[rp.Partition] = rp.Offset
			}
		}
		return offsets, nil
	}
	first, err := listOffsets(-2) // earliest
	if err != nil {
		return fail(err)
	}
	end, err := listOffsets(-1) // latest
	if err != nil {
		return fail(err)
	}
	start := map[string]map[int32]kgo.Offset{topic: {}}
	pending := map[int32]bool{}
	for _, p := range partitions {
		at := first[p]
		if a := from[p]; a != nil && a.next > at {
			at = a.next
		}
		if at >= end[p] {
			continue // nothing waiting
		}
		start[topic][p] = kgo.NewOffset().At(at)
		pending[p] = true
	}
	if len(pending) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(t.opts(), kgo.ConsumePartitions(start))...)
	if err != nil {
		return fail(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	for len(pending) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fail(ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if !pending[r.Partition] {
				return
			}
			if a := from[r.Partition]; a == nil || !a.skip[r.Offset] {
				records = append(records, r)
			}
			if r.Offset+1 >= end[r.Partition] || limit > 0 && len(records) >= limit && len(partitions) == 1 {
				delete(pending, r.Partition)
			}
		})
	}
	sort.SliceStable(records, func(i, j int) bool {
		if !records[i].Timestamp.Equal(records[j].Timestamp) {
			return records[i].Timestamp.Before(records[j].Timestamp)
		}
		if records[i].Partition != records[j].Partition {
			return records[i].Partition < records[j].Partition
		}
		return records[i].Offset < records[j].Offset
	})
	if limit > 0 && len(records) > limit {
		records = records[:limit]
	}
	out := make([]*message.Message, 0, len(records))
	for _, r := range records {
		out = append(out, unmarshal(r))
	}
	return out, nil
}
