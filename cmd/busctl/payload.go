package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// payloadJSON holds a payload in JSON output: as JSON when it is JSON, as a
// string when it is other text, else as base64.
type payloadJSON struct {
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadText   *string         `json:"payload_text,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
}

func newPayloadJSON(p []byte) payloadJSON {
	switch {
	case json.Valid(p):
		var buf bytes.Buffer
		_ = json.Compact(&buf, p)
		return payloadJSON{Payload: buf.Bytes()}
	case isText(p):
		s := string(p)
		return payloadJSON{PayloadText: &s}
	default:
		return payloadJSON{PayloadBase64: p}
	}
}

// payloadText renders a payload for people: indented JSON, text as it is,
// or a note for binary data.
func payloadText(p []byte) string {
	if len(p) == 0 {
		return "(empty payload)"
	}
	if json.Valid(p) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, p, "", "  "); err == nil {
			return buf.String()
		}
	}
	if isText(p) {
		return string(p)
	}
	return fmt.Sprintf("(%d bytes of binary data; use --json for base64)", len(p))
}

// isText reports whether p is UTF-8 without control characters other than
// tab and line breaks.
func isText(p []byte) bool {
	if !utf8.Valid(p) {
		return false
	}
	for _, r := range string(p) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}
