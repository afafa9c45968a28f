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

// keyedEvent is the event name of the keyed scenarios' event.
const keyedEvent = "bench.keyed"

// Sample is the benchmark's busline event: a publish timestamp and a pad
// that brings its JSON encoding to the configured payload size.
type Sample struct {
	SentAt int64  `json:"sent_at"`
	Pad    string `json:"pad"`
}

// EventName returns "bench.sample".
func (Sample) EventName() string { return sampleEvent }

// KeyedSample is the event of the keyed scenarios: a Sample with its
// ordering key (1..Config.Keys; 0 for none) and its place in the key's
// sequence (from 1). It is a type of its own so that Sample, and with it
// the figures of every other scenario, stays as it was.
type KeyedSample struct {
	SentAt int64  `json:"sent_at"`
	Key    int    `json:"key"`
	Seq    int64  `json:"seq"`
	Pad    string `json:"pad"`
}

// EventName returns "bench.keyed".
func (KeyedSample) EventName() string { return keyedEvent }

// newSample returns a sample whose JSON encoding is about size bytes for
// any timestamp (timestamps are 19 digits until 2286).
func newSample(sentAt int64, pad string) Sample { return Sample{SentAt: sentAt, Pad: pad} }

// samplePad returns the pad of a size-byte sample; keyed, of one whose key
// and seq take up to keyedExtra bytes.
func samplePad(size int, keyed bool) string {
	// {"sent_at":1764249213000000000,"pad":""} is 40 bytes.
	size -= 40
	if keyed {
		size -= keyedExtra
	}
	return strings.Repeat("x", max(0, size))
}

// keyedExtra is the length of `,"key":1000,"seq":10`, what a key and a seq
// add to a sample's JSON in the keyed scenarios' usual sizes.
const keyedExtra = 20

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
