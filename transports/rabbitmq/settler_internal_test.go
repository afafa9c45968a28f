package rabbitmq

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// brokerAcks plays the broker's side of one channel's acknowledgements: a
// tag is settled once; an ack or nack of a tag already settled is what
// makes RabbitMQ close the channel (PRECONDITION_FAILED - unknown delivery
// tag), and a multiple-ack settles every unsettled tag up to its own.
type brokerAcks struct {
	mu      sync.Mutex
	settled map[uint64]string
	errs    []string
}

func (b *brokerAcks) settle(tag uint64, how string) {
	if prev, ok := b.settled[tag]; ok {
		b.errs = append(b.errs, fmt.Sprintf("tag %d %s after it was already %s", tag, how, prev))
		return
	}
	b.settled[tag] = how
}

func (b *brokerAcks) Ack(tag uint64, multiple bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !multiple {
		b.settle(tag, "acked")
		return nil
	}
	for t := uint64(1); t <= tag; t++ {
		if _, ok := b.settled[t]; !ok {
			b.settled[t] = "acked"
		}
	}
	return nil
}

func (b *brokerAcks) Nack(tag uint64, multiple, requeue bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle(tag, "nacked")
	return nil
}

func (b *brokerAcks) Reject(tag uint64, requeue bool) error { return b.Nack(tag, false, requeue) }

// A multiple-ack never covers a delivery whose delayed nack is on its way:
// each nacked delivery is nacked, never acked, whatever the interleaving of
// the nack timers with the consumer's acks (run under -race -count=50).
func TestSettlerMultipleAckNeverCoversPendingNack(t *testing.T) {
	b := &brokerAcks{settled: map[uint64]string{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A zero backoff fires each nack timer at once, concurrently with the
	// acks that follow it: the widest overlap.
	st := newSettler(b, 4, newNackBackoff(0, 0), log, "q")
	const n = 4000
	want := map[uint64]string{}
	for tag := uint64(1); tag <= n; tag++ {
		acked := tag%5 != 0
		st.settle(fmt.Sprint(tag), tag, acked)
		want[tag] = map[bool]string{true: "acked", false: "nacked"}[acked]
	}
	// Every nack timer has fired or fires now; then stop sends the rest.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		waiting := len(st.nacks)
		st.mu.Unlock()
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d nacks still waiting after 10s", waiting)
		}
		time.Sleep(time.Millisecond) // polling the timers' state
	}
	st.stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Error(e)
	}
	for tag, w := range want {
		if got := b.settled[tag]; got != w {
			t.Errorf("delivery %d was %q at the broker, want %s", tag, got, w)
		}
	}
}

// The delay before a nacked message's redelivery starts at the base and
// doubles with each consecutive nack of it, up to the maximum, and starts
// over once it is acked (forget).
func TestNackBackoffDoubles(t *testing.T) {
	b := newNackBackoff(100*time.Millisecond, time.Second)
	var got []time.Duration
	for range 6 {
		got = append(got, b.next("m"))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d := b.next("other"); d != 100*time.Millisecond {
		t.Errorf("another message's first delay %v, want 100ms", d)
	}
	b.forget("m")
	if d := b.next("m"); d != 100*time.Millisecond {
		t.Errorf("first delay after forget %v, want 100ms", d)
	}
}
