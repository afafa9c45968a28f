package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// codecEvent has a field of every kind an event commonly holds.
type codecEvent struct {
	ID        string            `json:"id"`
	Amount    float64           `json:"amount"`
	Count     int64             `json:"count,omitempty"`
	Small     uint8             `json:"small"`
	OK        bool              `json:"ok"`
	At        time.Time         `json:"at"`
	Tags      []string          `json:"tags"`
	Attrs     map[string]string `json:"attrs,omitempty"`
	Nested    *codecNested      `json:"nested,omitempty"`
	Raw       json.RawMessage   `json:"raw,omitempty"`
	Bytes     []byte            `json:"bytes,omitempty"`
	Any       any               `json:"any,omitempty"`
	Skipped   string            `json:"-"`
	Untagged  string
	Quantity  json.Number `json:"quantity,omitempty"`
	unexposed int
}

type codecNested struct {
	Name  string       `json:"name"`
	Items []codecEvent `json:"items,omitempty"`
}

func (codecEvent) EventName() string { return "codec.event" }

// The default codec must write exactly what encoding/json writes.
func TestJSONMarshalsAsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.FixedZone("x", 3600))
	values := []any{
		codecEvent{},
		codecEvent{ID: "a<b>&c\u2028\u2029", Amount: 12.5, Count: -3, Small: 255, OK: true, At: at,
			Tags: []string{"x", "", "é", "\x00\x1f"}, Attrs: map[string]string{"b": "2", "a": "1"},
			Nested: &codecNested{Name: "n", Items: []codecEvent{{ID: "inner"}}},
			Raw:    json.RawMessage(`{"k":[1,2,3]}`), Bytes: []byte{0, 1, 2, 250},
			Any: map[string]any{"f": 1.5, "s": "x", "n": nil}, Skipped: "no", Untagged: "yes",
			Quantity: "12.50", unexposed: 1},
		codecEvent{Amount: 1e21, Tags: []string{}},
		codecEvent{Amount: math.SmallestNonzeroFloat64},
		map[string]int{"z": 1, "a": 2},
		[]any{1, "two", 3.0, nil, true},
		"plain string \"quoted\" \\ and \t tab",
	}
	for i, v := range values {
		want, werr := json.Marshal(v)
		got, gerr := JSON.Marshal(v)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("value %d: encoding/json error %v, JSON error %v", i, werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("value %d:\n JSON         %s\n encoding/json %s", i, got, want)
		}
	}
	if _, err := JSON.Marshal(codecEvent{Amount: math.NaN()}); err == nil {
		t.Error("JSON.Marshal of NaN: no error, encoding/json refuses it")
	}
}

// The default codec must read every payload as encoding/json reads it, and
// refuse those it refuses.
func TestJSONUnmarshalsAsEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`,
		`null`,
		`{"id":"x","amount":1.25,"count":7,"small":8,"ok":true,"at":"2026-11-27T15:04:05.123456789+01:00"}`,
		`{"ID":"case-insensitive","AMOUNT":2,"untagged":"u"}`,
		`{"id":"dup","id":"last wins"}`,
		`{"unknown":{"deep":[1,{"x":null}]},"id":"kept"}`,
		`{"tags":null,"attrs":null,"nested":null}`,
		`{"tags":["a","b"],"attrs":{"k":"v"},"nested":{"name":"n","items":[{"id":"i"}]}}`,
		`{"raw":{"k":[1,2]},"bytes":"AAEC+g==","any":{"f":1.5,"l":[true,null]}}`,
		`{"quantity":12.50}`,
		`{"id":"\u00e9\ud83d\ude00\n\"\\"}`,
		`{"id":"\ud800"}`,
		` {"id" : "spaces" } `,
		`{"small":256}`,
		`{"small":-1}`,
		`{"count":1.5}`,
		`{"amount":"1"}`,
		`{"ok":"true"}`,
		`{"at":"not a time"}`,
		`{"bytes":"***"}`,
		`{"id":1}`,
		`{"tags":"x"}`,
		`{"id":"x"`,
		`{"id":"x"}}`,
		`{"id":"x",}`,
		`[1,2]`,
		`"str"`,
		``,
		`{"id":"x"} {"id":"y"}`,
		`{"Skipped":"ignored","-":"dash"}`,
	}
	for _, in := range inputs {
		var want, got codecEvent
		werr := json.Unmarshal([]byte(in), &want)
		gerr := JSON.Unmarshal([]byte(in), &got)
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%s: encoding/json error %v, JSON error %v", in, werr, gerr)
			continue
		}
		var typeErr *json.UnmarshalTypeError
		if werr != nil && !errors.As(werr, &typeErr) {
			continue // a syntax error: encoding/json leaves v as it stopped
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n JSON          %+v\n encoding/json %+v", in, got, want)
		}
	}
}

// FuzzJSONMatchesEncodingJSON checks that the default codec and
// encoding/json agree on whether a payload decodes into an event, and on the
// event it decodes to.
func FuzzJSONMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"id":"x","tags":["a"],"nested":{"name":"n"}}`, `{"amount":1e400}`, `{"any":[{"a":1}]}`, `{"at":"2026-11-27T15:04:05Z"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got codecEvent
		werr := json.Unmarshal(data, &want)
		gerr := JSON.Unmarshal(data, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encoding/json error %v, JSON error %v", data, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n JSON          %+v\n encoding/json %+v", data, got, want)
		}
	})
}

// BenchmarkCodec compares the default codec with encoding/json on a
// 256-byte event, the benchmarks' payload.
func BenchmarkCodec(b *testing.B) {
	type sample struct {
		SentAt int64  `json:"sent_at"`
		Pad    string `json:"pad"`
	}
	data, err := json.Marshal(sample{SentAt: time.Now().UnixNano(), Pad: strings.Repeat("x", 215)})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		codec Codec
	}{{"JSON", JSON}, {"StdJSON", StdJSON}} {
		b.Run(c.name+"/Unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var s sample
				if err := c.codec.Unmarshal(data, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/Marshal", func(b *testing.B) {
			s := sample{SentAt: 1, Pad: strings.Repeat("x", 215)}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := c.codec.Marshal(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
