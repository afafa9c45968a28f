package bustest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/bustest"
	"github.com/busline/busline/middleware"
	"github.com/busline/busline/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// OrderPlaced and PaymentCharged are the events of the application under
// test.
type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Total   int    `json:"total"`
}

func (OrderPlaced) EventName() string { return "orders.placed" }

type PaymentCharged struct {
	OrderID string `json:"order_id"`
}

func (PaymentCharged) EventName() string { return "payments.charged" }

// register is the application's own registration code, run unchanged
// against the harness's bus: billing charges every order and says so.
func register(b *bus.Bus) error {
	return bus.Subscribe(b, "billing", func(ctx context.Context, e OrderPlaced) error {
		return bus.Publish(ctx, b, PaymentCharged{OrderID: e.OrderID}, bus.WithKey(e.OrderID))
	})
}

func publish(t *testing.T, h *bustest.Harness, e bus.Event, opts ...bus.PublishOption) {
	t.Helper()
	if err := bus.Publish(context.Background(), h.Bus(), e, opts...); err != nil {
		t.Fatal(err)
	}
}

func TestWaitHandled(t *testing.T) {
	t.Parallel()
	h := bustest.New(t)
	if err := register(h.Bus()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"A-1", "A-2", "A-3"} {
		publish(t, h, OrderPlaced{OrderID: id})
	}
	got := bustest.WaitHandled[OrderPlaced](t, h, "billing", 3)
	for i, want := range []string{"A-1", "A-2", "A-3"} {
		m := got[i]
		if m.Event.OrderID != want || m.Metadata.Group != "billing" || m.Metadata.Attempt != 1 ||
			m.Metadata.Event != "orders.placed" || m.Metadata.Topic != "orders.placed" || m.Metadata.Source != "bustest" {
			t.Errorf("handled[%d] = %+v, want %s handled by billing at attempt 1 from orders.placed", i, m, want)
		}
	}
	if n := len(bustest.Handled[OrderPlaced](h, "shipping")); n != 0 {
		t.Errorf("Handled for group shipping = %d events, want 0: no such group", n)
	}
}

func TestWaitPublishedByHandler(t *testing.T) {
	t.Parallel()
	h := bustest.New(t)
	if err := register(h.Bus()); err != nil {
		t.Fatal(err)
	}
	var orderID string
	publish(t, h, OrderPlaced{OrderID: "A-1"}, bus.StoreID(&orderID))
	got := bustest.WaitPublished[PaymentCharged](t, h, 1)
	m := got[0]
	if m.Event.OrderID != "A-1" || m.Metadata.Key != "A-1" || m.Metadata.CausationID != orderID || m.Metadata.CorrelationID != orderID {
		t.Errorf("published %+v, want PaymentCharged A-1 with key A-1, caused by and correlated with %s", m, orderID)
	}
	if orders := bustest.Published[OrderPlaced](h); len(orders) != 1 || orders[0].Metadata.ID != orderID {
		t.Errorf("Published[OrderPlaced] = %+v, want the one order %s", orders, orderID)
	}
}

// TestRedeliveryOnFakeClock fails a handler once: the message moves to the
// 10s tier and is handled again only when the clock reaches it, with no
// real sleep.
func TestRedeliveryOnFakeClock(t *testing.T) {
	t.Parallel()
	clock := bustest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := bustest.New(t, bustest.WithClock(clock), bustest.WithConfig(bus.Config{
		Retry:  middleware.RetryPolicy{Attempts: 1}, // no immediate retry: straight to the 10s tier
		Delays: []time.Duration{10 * time.Second, time.Minute},
	}))
	var calls atomic.Int32
	err := bus.Subscribe(h.Bus(), "billing", func(ctx context.Context, e OrderPlaced) error {
		if calls.Add(1) == 1 {
			return errors.New("card declined")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "A-1"})

	moved := bustest.WaitRetrying[OrderPlaced](t, h, "billing", 1)
	if f := moved[0].Failure; f.Tier != 1 || f.Error != "card declined" || f.Attempts != 1 {
		t.Fatalf("failure record %+v, want tier 1, attempts 1, error %q", f, "card declined")
	}
	retry := wire.RetryTopic("orders.placed", "billing")
	h.Advance(10*time.Second - time.Millisecond)
	if w, q := h.Transport().Waiting(), h.Transport().Pending(retry, "billing"); w != 1 || q != 0 {
		t.Fatalf("1ms before the tier is due: %d waiting, %d in the retry lane; want 1 and 0", w, q)
	}
	h.Advance(time.Millisecond)
	got := bustest.WaitHandled[OrderPlaced](t, h, "billing", 1)
	if md := got[0].Metadata; md.Attempt != 2 || md.Topic != "orders.placed" {
		t.Errorf("redelivery handled with %+v, want attempt 2 on topic orders.placed", md)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times, want 2", n)
	}
}

func TestScheduledPublishOnFakeClock(t *testing.T) {
	t.Parallel()
	h := bustest.New(t, bustest.WithClock(bustest.NewClock(time.Unix(0, 0))))
	if err := register(h.Bus()); err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "later"}, bus.WithDelay(time.Hour))
	publish(t, h, OrderPlaced{OrderID: "now"})
	if got := bustest.WaitHandled[OrderPlaced](t, h, "billing", 1); got[0].Event.OrderID != "now" {
		t.Fatalf("first handled %q, want %q: the scheduled one is not due", got[0].Event.OrderID, "now")
	}
	if w := h.Transport().Waiting(); w != 1 {
		t.Fatalf("%d publishes waiting, want the scheduled one", w)
	}
	h.Advance(time.Hour)
	got := bustest.WaitHandled[OrderPlaced](t, h, "billing", 2)
	if got[1].Event.OrderID != "later" {
		t.Errorf("second handled %q, want %q", got[1].Event.OrderID, "later")
	}
}

func TestWaitPoisoned(t *testing.T) {
	t.Parallel()
	h := bustest.New(t)
	err := bus.Subscribe(h.Bus(), "billing", func(ctx context.Context, e OrderPlaced) error {
		return bus.Permanent(fmt.Errorf("order %s: unknown currency", e.OrderID))
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "A-1"})
	got := bustest.WaitPoisoned[OrderPlaced](t, h, "billing", 1)
	if f := got[0].Failure; f.Reason != wire.ReasonPermanent || f.Error != "order A-1: unknown currency" || f.Tier != 0 {
		t.Errorf("poison record %+v, want reason %s, error %q", f, wire.ReasonPermanent, "order A-1: unknown currency")
	}
	if got[0].Metadata.Raw.Get(wire.MetaReason) != wire.ReasonPermanent {
		t.Errorf("Metadata.Raw has no %s=%s: %v", wire.MetaReason, wire.ReasonPermanent, got[0].Metadata.Raw)
	}
}

// recordingTB is a TB whose failures are recorded instead of ending the
// test.
type recordingTB struct {
	*testing.T
	mu    sync.Mutex
	fatal []string
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatal = append(r.fatal, fmt.Sprintf(format, args...))
}

func TestWaitFailureSaysWhatWasSeen(t *testing.T) {
	t.Parallel()
	h := bustest.New(t, bustest.WithTimeout(100*time.Millisecond), bustest.WithConfig(bus.Config{
		Retry:  middleware.RetryPolicy{Attempts: 2, Backoff: middleware.Backoff{Initial: time.Millisecond, Max: time.Millisecond}},
		Delays: []time.Duration{},
	}))
	err := bus.Subscribe(h.Bus(), "billing", func(ctx context.Context, e OrderPlaced) error {
		return errors.New("ledger offline")
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "A-1"})
	bustest.WaitPoisoned[OrderPlaced](t, h, "billing", 1) // everything has happened

	rt := &recordingTB{T: t}
	if got := bustest.WaitHandled[OrderPlaced](rt, h, "billing", 1); got != nil {
		t.Errorf("a failed wait returned %v, want nil", got)
	}
	if len(rt.fatal) != 1 {
		t.Fatalf("the wait failed the test %d times, want once", len(rt.fatal))
	}
	msg := rt.fatal[0]
	for _, want := range []string{
		"bustest.WaitHandled[bustest_test.OrderPlaced]",
		"0 of the 1 orders.placed events waited for were handled by group billing",
		"published orders.placed",
		"failed orders.placed", "by group billing (attempt 1): ledger offline", "(attempt 2): ledger offline",
		"poisoned orders.placed", "to orders.placed.billing.poison (error): ledger offline",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message does not say %q:\n%s", want, msg)
		}
	}
}

func TestNewInvalidConfig(t *testing.T) {
	t.Parallel()
	rt := &recordingTB{T: t}
	if h := bustest.New(rt, bustest.WithConfig(bus.Config{Service: "no spaces"})); h != nil {
		t.Error("New with an invalid config returned a harness")
	}
	if len(rt.fatal) != 1 || !strings.Contains(rt.fatal[0], `service name "no spaces"`) {
		t.Errorf("New failed the test with %q, want one failure naming the service", rt.fatal)
	}
}

func TestAdvanceWithoutClock(t *testing.T) {
	t.Parallel()
	rt := &recordingTB{T: t}
	h := bustest.New(rt)
	h.Advance(time.Second)
	if len(rt.fatal) != 1 || !strings.Contains(rt.fatal[0], "bustest.WithClock") {
		t.Errorf("Advance without a clock failed with %q, want one failure saying to use WithClock", rt.fatal)
	}
}

// TestContext unit-tests a handler that reads its metadata, with no bus.
func TestContext(t *testing.T) {
	t.Parallel()
	var seen bus.Metadata
	handler := func(ctx context.Context, e OrderPlaced) error {
		md, ok := bus.MetadataFrom(ctx)
		if !ok {
			return errors.New("no metadata")
		}
		seen = md
		return nil
	}
	ctx := bustest.Context[OrderPlaced](t, bus.Metadata{Key: "customer-7", Attempt: 3})
	if err := handler(ctx, OrderPlaced{OrderID: "A-1"}); err != nil {
		t.Fatal(err)
	}
	want := bus.Metadata{ID: "bustest-message", Event: "orders.placed", Source: "bustest", Topic: "orders.placed", Key: "customer-7", Attempt: 3}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("handler saw %+v, want %+v", seen, want)
	}
	if ctx.Err() != nil {
		t.Errorf("context done during the test: %v", ctx.Err())
	}
}

// observer counts what the application's own Observer is told.
type observer struct{ handled atomic.Int32 }

func (o *observer) Publishing(context.Context, bus.Publication, []*message.Message) func(error) {
	return func(error) {}
}

func (o *observer) Handling(ctx context.Context, _ bus.Delivery, _ *message.Message) (context.Context, func(error)) {
	return ctx, func(err error) {
		if err == nil {
			o.handled.Add(1)
		}
	}
}

func (o *observer) Diverted(context.Context, bus.Delivery, *message.Message, string, wire.Failure) {}

func TestApplicationObserverStillCalled(t *testing.T) {
	t.Parallel()
	obs := &observer{}
	h := bustest.New(t, bustest.WithConfig(bus.Config{Observer: obs}))
	if err := register(h.Bus()); err != nil {
		t.Fatal(err)
	}
	publish(t, h, OrderPlaced{OrderID: "A-1"})
	bustest.WaitHandled[OrderPlaced](t, h, "billing", 1)
	if n := obs.handled.Load(); n != 1 {
		t.Errorf("the application's Observer saw %d successful attempts, want 1", n)
	}
}

// TestBillingChargesOrders is the README's example, kept compiling and
// passing here.
func TestBillingChargesOrders(t *testing.T) {
	h := bustest.New(t)
	if err := register(h.Bus()); err != nil { // your bus.Subscribe calls
		t.Fatal(err)
	}
	var orderID string
	if err := bus.Publish(context.Background(), h.Bus(), OrderPlaced{OrderID: "A-1", Total: 42}, bus.StoreID(&orderID)); err != nil {
		t.Fatal(err)
	}
	charged := bustest.WaitPublished[PaymentCharged](t, h, 1)
	if m := charged[0]; m.Event.OrderID != "A-1" || m.Metadata.CausationID != orderID {
		t.Errorf("published %+v, want a charge for A-1 caused by the order", m)
	}
}
