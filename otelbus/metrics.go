package otelbus

import (
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
)

// Names of busline's own metrics (the conventions' are in the package
// documentation).
const (
	MetricRetries     = "busline.consumer.retries"
	MetricDiversions  = "busline.consumer.diversions"
	MetricPoisonings  = "busline.consumer.poisonings"
	MetricLag         = "busline.consumer.lag"
	MetricLaneDepth   = "busline.lane.depth"
	MetricPoisonDepth = "busline.poison.depth"
	MetricOldestAge   = "busline.oldest_message.age"
)

// durationBuckets are the conventions' recommended boundaries for messaging
// durations, in seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

type instruments struct {
	operationDuration messagingconv.ClientOperationDuration
	sent              messagingconv.ClientSentMessages
	consumed          messagingconv.ClientConsumedMessages
	processDuration   messagingconv.ProcessDuration
	retries           metric.Int64Counter
	diversions        metric.Int64Counter
	poisonings        metric.Int64Counter
}

func newInstruments(m metric.Meter) (*instruments, error) {
	var i instruments
	var errs [7]error
	i.operationDuration, errs[0] = messagingconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(durationBuckets...))
	i.sent, errs[1] = messagingconv.NewClientSentMessages(m)
	i.consumed, errs[2] = messagingconv.NewClientConsumedMessages(m)
	i.processDuration, errs[3] = messagingconv.NewProcessDuration(m, metric.WithExplicitBucketBoundaries(durationBuckets...))
	i.retries, errs[4] = m.Int64Counter(MetricRetries, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts at handling a message after its first: immediate retries, redeliveries from the retry lane and replays from the poison lane."))
	i.diversions, errs[5] = m.Int64Counter(MetricDiversions, metric.WithUnit("{message}"),
		metric.WithDescription("Messages moved to a group's retry lane for a delayed redelivery, by failure reason and tier."))
	i.poisonings, errs[6] = m.Int64Counter(MetricPoisonings, metric.WithUnit("{message}"),
		metric.WithDescription("Messages moved to a group's poison lane, by failure reason."))
	return &i, errors.Join(errs[:]...)
}

// setKey identifies one attribute set of a measurement.
type setKey struct {
	op        string // send, process, retry, divert, poison
	system    string
	dest      string
	group     string
	errorType string
	extra     string // reason, retry kind
	tier      int
}

// sets caches attribute sets, with the measurement options that carry
// them, so that a measurement allocates nothing once its set was seen.
type sets struct {
	mu sync.RWMutex
	m  map[setKey]*measured
}

// measured is one cached attribute set and its options, built once: an
// option made per measurement would allocate each time.
type measured struct {
	set    attribute.Set
	add    []metric.AddOption
	record []metric.RecordOption
}

func (s *sets) get(k setKey, build func() []attribute.KeyValue) *measured {
	s.mu.RLock()
	m, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return m
	}
	set := attribute.NewSet(build()...)
	opt := metric.WithAttributeSet(set)
	m = &measured{set: set, add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[setKey]*measured{}
	}
	s.m[k] = m
	s.mu.Unlock()
	return m
}

// names caches span names ("send orders.placed").
type names struct {
	mu sync.RWMutex
	m  map[nameKey]string
}

type nameKey struct{ op, dest string }

func (n *names) get(op, dest string) string {
	key := nameKey{op, dest}
	n.mu.RLock()
	name, ok := n.m[key]
	n.mu.RUnlock()
	if ok {
		return name
	}
	name = op + " " + dest
	n.mu.Lock()
	if n.m == nil {
		n.m = map[nameKey]string{}
	}
	n.m[key] = name
	n.mu.Unlock()
	return name
}

// metricAttrs returns the conventions' attributes of a measurement of k.
func metricAttrs(k setKey, opName string, opType attribute.KeyValue) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		systemAttr(k.system),
		semconv.MessagingOperationName(opName),
		opType,
		semconv.MessagingDestinationName(k.dest),
	}
	if k.group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(k.group))
	}
	if k.errorType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(k.errorType))
	}
	return attrs
}
