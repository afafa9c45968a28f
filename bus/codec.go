package bus

import "encoding/json"

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

// JSON is the default codec: encoding/json, content type application/json.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) ContentType() string                { return "application/json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
