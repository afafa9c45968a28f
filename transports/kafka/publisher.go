package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/wire"
)

// PartitionKeyHeader is the metadata key whose value becomes the Kafka
// record key, and so chooses the partition: the CloudEvents partitioning
// extension that bus.WithKey sets.
const PartitionKeyHeader = wire.MetaPartitionKey

// uuidHeader carries the Watermill message UUID, under the name the
// Watermill Kafka adapter (watermill-kafka's UUIDHeaderKey) uses, so that
// records stay readable by either.
const uuidHeader = "_watermill_message_uuid"

// publisher is busline's Watermill publisher on franz-go: a Publish call's
// messages go to the transport's shared idempotent producer at once, and
// concurrent publishes share its pipelined requests.
type publisher struct {
	t      *Transport
	closed atomic.Bool
}

// Publish sends msgs to topic and returns once the brokers acknowledged all
// of them (acks=all), or with the first error. It creates topic first when
// it is missing and Config.CreateTopics allows. The first message's context
// bounds the call: Publish returns as soon as it ends (within a goroutine
// wake-up; the tests allow 250ms on a loaded machine), with an error
// wrapping transports.ErrMaybeSent if a record was sent or buffered and not
// acknowledged. A message over Config.MaxMessageBytes fails the call with a
// *transports.MessageTooLargeError before anything is sent.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx := msgs[0].Context()
	return p.t.produce(ctx, topic, msgs, nil)
}

// produce sends msgs to topic, each record changed by edit when not nil,
// and waits for every acknowledgement (see produceRecords). Nothing is
// sent, and the error does not wrap transports.ErrMaybeSent, when the
// transport is closed, ctx is already done, a message is larger than
// Config.MaxMessageBytes or topic cannot be created.
func (t *Transport) produce(ctx context.Context, topic string, msgs []*message.Message, edit func(*kgo.Record)) error {
	if t.isClosed() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka transport: publish to %q: nothing sent: %w", topic, err)
	}
	if err := transports.CheckSize(t.cfg.MaxMessageBytes, maxBytesHint, msgs...); err != nil {
		return err
	}
	if err := t.ensureTopic(ctx, topic); err != nil {
		return err
	}
	records := make([]*kgo.Record, 0, len(msgs))
	for _, m := range msgs {
		r, err := marshal(topic, m)
		if err != nil {
			return err
		}
		if edit != nil {
			edit(r)
		}
		records = append(records, r)
	}
	if err := t.produceRecords(ctx, records...); err != nil {
		return fmt.Errorf("kafka transport: publish %d message(s) to %q: %w", len(msgs), topic, err)
	}
	return nil
}

// produceRecords produces records and waits for their acknowledgements
// until ctx ends; it returns the first error. The error wraps
// transports.ErrMaybeSent when a record may have been stored all the
// same: ctx ended before every acknowledgement came (the producer keeps
// the records it sent or buffered and may still deliver them), a record
// failed in a way that leaves its fate open (a request timeout, a broken
// connection, the client closing), or some of the records were stored and
// others not.
//
// A record that franz-go failed because of another is produced again, on
// its own: when the brokers refuse a batch as too large, franz-go fails
// every record buffered on that partition with it, and it cancels a batch
// on the context of its first record, which may be another call's.
func (t *Transport) produceRecords(ctx context.Context, records ...*kgo.Record) error {
	return t.produceRecordsUntil(ctx, ctx, records...)
}

// produceRecordsUntil is produceRecords waiting for the acknowledgements
// until wait ends rather than ctx: the mover waits for every outcome of
// what it produced, even while it stops, so that it commits what was
// moved. ctx still cancels the records not sent yet.
func (t *Transport) produceRecordsUntil(ctx, wait context.Context, records ...*kgo.Record) error {
	errs, settled := send(ctx, wait, t.cl, records)
	for i, err := range errs {
		if settled[i] && err != nil && t.collateral(ctx, records[i], err) {
			errs[i], settled[i] = t.sendAlone(ctx, records[i])
		}
	}
	return t.redact(outcome(wait, errs, settled))
}

// send produces records through cl, cancelled with ctx, and waits for
// their promises until wait ends: settled[i] tells whether records[i]'s
// came, errs[i] is its error.
func send(ctx, wait context.Context, cl *kgo.Client, records []*kgo.Record) (errs []error, settled []bool) {
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(records)) // promises never block
	for i, r := range records {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { results <- result{i, err} })
	}
	errs, settled = make([]error, len(records)), make([]bool, len(records))
	for n := 0; n < len(records); n++ {
		select {
		case res := <-results:
			errs[res.i], settled[res.i] = res.err, true
		case <-wait.Done():
			for { // take the promises that came meanwhile
				select {
				case res := <-results:
					errs[res.i], settled[res.i] = res.err, true
				default:
					return errs, settled
				}
			}
		}
	}
	return errs, settled
}

// sendAlone produces r through the solo producer, which never has more
// than one record buffered, so that no other record can fail it.
func (t *Transport) sendAlone(ctx context.Context, r *kgo.Record) (err error, settled bool) {
	cl, err := t.soloClient()
	if err != nil {
		return err, true
	}
	select {
	case t.soloTurn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err(), true // not produced again: the first failure stands
	}
	results := make(chan error, 1)
	// The turn ends when the record is settled, even after ctx ended.
	cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		results <- err
		<-t.soloTurn
	})
	select {
	case err := <-results:
		return err, true
	case <-ctx.Done():
		select {
		case err := <-results:
			return err, true
		default:
			return nil, false
		}
	}
}

// soloClient returns the solo producer, creating it on first use.
func (t *Transport) soloClient() (*kgo.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	if t.solo == nil {
		opts := append(append(t.opts(), t.cfg.producerOpts()...), kgo.ProducerLinger(0))
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("kafka transport: producer: %w", err)
		}
		t.solo = cl
	}
	return t.solo, nil
}

// collateral reports whether r may have failed with err because of another
// record, with nothing stored, and so is worth producing again on its own:
// refused as too large though it fits a batch by itself, or cancelled by a
// context that is not ctx.
func (t *Transport) collateral(ctx context.Context, r *kgo.Record, err error) bool {
	switch {
	case errors.Is(err, kerr.MessageTooLarge):
		return recordBytes(r) <= t.cfg.MaxMessageBytes+BatchOverhead
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return ctx.Err() == nil
	default:
		return false
	}
}

// recordBytes is about the size of r alone in a record batch, at least
// what franz-go counts against its batch limit.
func recordBytes(r *kgo.Record) int {
	n := 61 + 20 + len(r.Key) + len(r.Value) // batch header, record framing
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// outcome is the error of a produce whose records ended with errs, those
// not settled being still unacknowledged when ctx ended.
func outcome(ctx context.Context, errs []error, settled []bool) error {
	var first error
	stored, unsure := 0, false
	for i, err := range errs {
		switch {
		case !settled[i]:
			unsure = true
			if first == nil {
				first = fmt.Errorf("no acknowledgement before the context ended: %w", context.Cause(ctx))
			}
		case err == nil:
			stored++
		default:
			unsure = unsure || maybeStored(err)
			if first == nil {
				first = err
			}
		}
	}
	if first == nil {
		return nil
	}
	if stored > 0 {
		first = fmt.Errorf("%d of %d stored, then: %w", stored, len(errs), first)
		unsure = true
	}
	if unsure {
		return transports.MaybeSent(first)
	}
	return first
}

// maybeStored reports whether a record whose promise failed with err may
// have been stored by the brokers all the same.
func maybeStored(err error) bool {
	var ke *kerr.Error
	switch {
	case errors.Is(err, kerr.RequestTimedOut) || errors.Is(err, kerr.NotEnoughReplicasAfterAppend):
		return true // answered after the batch may have been appended
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) || errors.Is(err, kgo.ErrMaxBuffered):
		// franz-go fails an idempotent record on its context, timeout or
		// retries only while that is safe: never sent, or answered.
		return false
	case errors.As(err, &ke):
		return false // the brokers refused it
	default:
		return true // a broken connection, the client closing: unknown
	}
}

// Close releases this publisher only; the shared producer lives until the
// transport closes.
func (p *publisher) Close() error {
	p.closed.Store(true)
	return nil
}

// marshal turns a Watermill message into a Kafka record: the payload as
// value, the message UUID and every metadata entry as headers (as the
// Watermill adapter does), and ce_partitionkey as the record key.
func marshal(topic string, m *message.Message) (*kgo.Record, error) {
	if _, ok := m.Metadata[uuidHeader]; ok {
		return nil, fmt.Errorf("kafka transport: metadata key %s is reserved for the message UUID (remove it)", uuidHeader)
	}
	// One buffer holds every header value: one allocation, not one each.
	size := len(m.UUID)
	for _, v := range m.Metadata {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	value := func(v string) []byte {
		buf = append(buf, v...)
		return buf[len(buf)-len(v) : len(buf) : len(buf)]
	}
	headers := make([]kgo.RecordHeader, 0, len(m.Metadata)+1)
	headers = append(headers, kgo.RecordHeader{Key: uuidHeader, Value: value(m.UUID)})
	for k, v := range m.Metadata {
		headers = append(headers, kgo.RecordHeader{Key: k, Value: value(v)})
	}
	r := &kgo.Record{Topic: topic, Value: m.Payload, Headers: headers}
	if key := m.Metadata.Get(PartitionKeyHeader); key != "" {
		r.Key = []byte(key)
	}
	return r, nil
}
