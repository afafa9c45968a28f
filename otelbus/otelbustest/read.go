package otelbustest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/busline/wire"
)

// Find returns the metric named name, or nil.
func Find(rm metricdata.ResourceMetrics, name string) *metricdata.Metrics {
	for _, sm := range rm.ScopeMetrics {
		for i := range sm.Metrics {
			if sm.Metrics[i].Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

// Sum adds the values of the counter named name over its data points that
// have every attribute in attrs.
func Sum(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) int64 {
	m := Find(rm, name)
	if m == nil {
		return 0
	}
	var n int64
	if s, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range s.DataPoints {
			if hasAll(dp.Attributes, attrs) {
				n += dp.Value
			}
		}
	}
	return n
}

// Count adds the measurement counts of the histogram named name over its
// data points that have every attribute in attrs.
func Count(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) uint64 {
	m := Find(rm, name)
	if m == nil {
		return 0
	}
	var n uint64
	if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
		for _, dp := range h.DataPoints {
			if hasAll(dp.Attributes, attrs) {
				n += dp.Count
			}
		}
	}
	return n
}

// GaugeInt returns the value of the integer gauge named name at the data
// point that has every attribute in attrs.
func GaugeInt(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) (int64, bool) {
	if m := Find(rm, name); m != nil {
		if g, ok := m.Data.(metricdata.Gauge[int64]); ok {
			for _, dp := range g.DataPoints {
				if hasAll(dp.Attributes, attrs) {
					return dp.Value, true
				}
			}
		}
	}
	return 0, false
}

// GaugeFloat returns the value of the float gauge named name at the data
// point that has every attribute in attrs.
func GaugeFloat(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) (float64, bool) {
	if m := Find(rm, name); m != nil {
		if g, ok := m.Data.(metricdata.Gauge[float64]); ok {
			for _, dp := range g.DataPoints {
				if hasAll(dp.Attributes, attrs) {
					return dp.Value, true
				}
			}
		}
	}
	return 0, false
}

func hasAll(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, a := range attrs {
		if v, ok := set.Value(a.Key); !ok || v != a.Value {
			return false
		}
	}
	return true
}

// only returns the one span named name.
func only(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1", len(found), name)
	}
	return found[0]
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value
		}
	}
	return attribute.Value{}
}

func checkKind(t *testing.T, s sdktrace.ReadOnlySpan, want trace.SpanKind) {
	t.Helper()
	if s.SpanKind() != want {
		t.Errorf("span %q has kind %v, want %v", s.Name(), s.SpanKind(), want)
	}
}

func checkAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]any) {
	t.Helper()
	checkAttrList(t, fmt.Sprintf("span %q", s.Name()), s.Attributes(), want)
}

func checkAttrList(t *testing.T, what string, attrs []attribute.KeyValue, want map[string]any) {
	t.Helper()
	got := map[string]any{}
	for _, a := range attrs {
		got[string(a.Key)] = a.Value.AsInterface()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v (%T), want %v (%T)", what, k, got[k], got[k], v, v)
		}
	}
}

func linksTo(s sdktrace.ReadOnlySpan, sc trace.SpanContext) bool {
	for _, l := range s.Links() {
		if l.SpanContext.TraceID() == sc.TraceID() && l.SpanContext.SpanID() == sc.SpanID() {
			return true
		}
	}
	return false
}

func sortByStart(spans []sdktrace.ReadOnlySpan) {
	slices.SortStableFunc(spans, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
}

// logTrace logs spans as a tree, each under its parent, with its kind,
// trace id and links: the trace as the test recorded it.
func logTrace(t *testing.T, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	spans = slices.Clone(spans)
	sortByStart(spans)
	byID := map[trace.SpanID]bool{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = true
	}
	var b strings.Builder
	var walk func(parent trace.SpanID, depth int)
	walk = func(parent trace.SpanID, depth int) {
		for _, s := range spans {
			p := s.Parent().SpanID()
			if !byID[p] {
				p = trace.SpanID{}
			}
			if p != parent {
				continue
			}
			fmt.Fprintf(&b, "%s%s [%v] trace=%s span=%s", strings.Repeat("  ", depth), s.Name(), s.SpanKind(), s.SpanContext().TraceID(), s.SpanContext().SpanID())
			for _, l := range s.Links() {
				fmt.Fprintf(&b, " link=%s", l.SpanContext.SpanID())
			}
			for _, a := range s.Attributes() {
				if k := string(a.Key); k == "busline.attempt" || k == "busline.tier" || k == "error.type" {
					fmt.Fprintf(&b, " %s=%s", k, a.Value.String())
				}
			}
			for _, ev := range s.Events() {
				fmt.Fprintf(&b, " event=%s", ev.Name)
			}
			b.WriteByte('\n')
			walk(s.SpanContext().SpanID(), depth+1)
		}
	}
	walk(trace.SpanID{}, 0)
	t.Logf("recorded trace:\n%s", b.String())
}

// newLaneMessage is a message as the failure pipeline writes to a lane.
func newLaneMessage() *message.Message {
	id := uuid.NewString()
	msg := message.NewMessage(id, []byte(`{"n":0}`))
	msg.Metadata.Set(wire.MetaID, id)
	msg.Metadata.Set(wire.MetaType, Event{}.EventName())
	msg.Metadata.Set(wire.MetaContentType, "application/json")
	return msg
}
