package otelbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
)

// Gauges registers the observable gauges of b's subscriptions on the meter
// provider of opts (WithMeterProvider; other options are ignored):
//
//   - busline.consumer.lag: messages of the event's topic the group has not
//     acked yet (waiting and in flight);
//   - busline.lane.depth: messages in the group's retry lane, every tier
//     together, those the transport still keeps until they are due included
//     where it can tell;
//   - busline.poison.depth: messages in the group's poison lane;
//   - busline.oldest_message.age: seconds since the oldest of those
//     messages was published, per topic (busline.lane main, retry or
//     poison), where the transport knows.
//
// Each carries messaging.system, messaging.destination.name (the topic or
// lane), messaging.consumer.group.name and busline.event. The subscriptions
// are read from b (bus.Bus.Subscriptions) at every collection, so those
// added later are observed too. The numbers come from the transport's
// transports.BacklogReader, called once per topic and group at every
// collection, with the collection's context: on a broker that is one or two
// round trips each (see the package documentation for what each transport
// reads). A transport that is no BacklogReader reports nothing: Gauges then
// registers no callback and returns a no-op registration. Unregister the
// registration before closing the bus's transport.
func Gauges(b *bus.Bus, opts ...Option) (metric.Registration, error) {
	insp, ok := b.Transport().(transports.BacklogReader)
	if !ok {
		return noop.Registration{}, nil
	}
	m := meter(newConfig(opts))
	lag, err1 := m.Int64ObservableGauge(MetricLag, metric.WithUnit("{message}"),
		metric.WithDescription("Messages of the topic the consumer group has not acknowledged yet, waiting or in flight."))
	depth, err2 := m.Int64ObservableGauge(MetricLaneDepth, metric.WithUnit("{message}"),
		metric.WithDescription("Messages in the consumer group's retry lane, waiting for a delayed redelivery or due."))
	poison, err3 := m.Int64ObservableGauge(MetricPoisonDepth, metric.WithUnit("{message}"),
		metric.WithDescription("Messages in the consumer group's poison lane."))
	age, err4 := m.Float64ObservableGauge(MetricOldestAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest message the consumer group has yet to finish on the topic or lane."))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("otelbus.Gauges: %w", err)
	}
	system := systemAttr(b.TransportKind())
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		var errs []error
		now := time.Now()
		for _, s := range b.Subscriptions() {
			for _, l := range []struct {
				topic string
				lane  string
				gauge metric.Int64Observable
			}{{s.Topic, "main", lag}, {s.Retry, "retry", depth}, {s.Poison, "poison", poison}} {
				bl, err := insp.Backlog(ctx, l.topic, s.Group)
				if err != nil {
					errs = append(errs, fmt.Errorf("backlog of %s for group %s: %w", l.topic, s.Group, err))
					continue
				}
				attrs := []attribute.KeyValue{system,
					semconv.MessagingDestinationName(l.topic),
					semconv.MessagingConsumerGroupName(s.Group),
					AttrEvent.String(s.Event)}
				o.ObserveInt64(l.gauge, bl.Messages, metric.WithAttributes(attrs...))
				if !bl.Oldest.IsZero() && bl.Messages > 0 {
					o.ObserveFloat64(age, max(0, now.Sub(bl.Oldest).Seconds()),
						metric.WithAttributes(append(attrs, AttrLane.String(l.lane))...))
				}
			}
		}
		return errors.Join(errs...)
	}, lag, depth, poison, age)
	if err != nil {
		return nil, fmt.Errorf("otelbus.Gauges: %w", err)
	}
	return reg, nil
}
