package harness

import (
	"encoding/binary"
	"errors"
	"strings"
)

// minPayload is the smallest Config.PayloadSize: the JSON of a sample with
// an empty pad.
const minPayload = 48

// warmup is the sentAt of the message each measurement sends to check that
// its consumer is live before the clock starts; it is not counted.
const warmup = -1

// sampleEvent is the event name (and, mapped, the topic) of busline's
// benchmark event.
const sampleEvent = "bench.sample"

// Sample is the benchmark's busline event: a publish timestamp and a pad
// that brings its JSON encoding to the configured payload size.
type Sample struct {
	SentAt int64  `json:"sent_at"`
	Pad    string `json:"pad"`
}

// EventName returns "bench.sample".
func (Sample) EventName() string { return sampleEvent }

// newSample returns a sample whose JSON encoding is about size bytes for
// any timestamp (timestamps are 19 digits until 2286).
func newSample(sentAt int64, pad string) Sample { return Sample{SentAt: sentAt, Pad: pad} }

// samplePad returns the pad of a size-byte sample.
func samplePad(size int) string {
	// {"sent_at":1764249213000000000,"pad":""} is 40 bytes.
	return strings.Repeat("x", max(0, size-40))
}

// rawPayload returns a size-byte payload whose first 8 bytes hold sentAt,
// for the raw clients and plain Watermill.
func rawPayload(size int, sentAt int64) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(sentAt))
	for i := 8; i < size; i++ {
		b[i] = 'x'
	}
	return b
}

var errShortPayload = errors.New("payload shorter than its 8-byte timestamp")

// readSentAt returns the timestamp of a raw payload.
func readSentAt(b []byte) (int64, error) {
	if len(b) < 8 {
		return 0, errShortPayload
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
