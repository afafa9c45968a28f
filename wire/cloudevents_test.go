package wire_test

import (
	"errors"
	"testing"

	"github.com/busline/busline/wire"
)

func TestMediaType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"application/json":                               "application/json",
		"application/json; charset=utf-8":                "application/json",
		"Application/JSON":                               "application/json",
		" APPLICATION/cloudevents+json ; charset=UTF-8 ": "application/cloudevents+json",
		"application/json;;":                             "application/json", // does not parse: trimmed
		"":                                               "",
	} {
		if got := wire.MediaType(in); got != want {
			t.Errorf("MediaType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadStructured(t *testing.T) {
	t.Parallel()
	t.Run("JSONData", func(t *testing.T) {
		md, data, err := wire.ReadStructured([]byte(`{"specversion":"1.0","id":"a1","type":"orders.placed","source":"/shop","datacontenttype":"application/json; charset=utf-8","traceparent":"00-x","count":3,"data":{"n":1}}`))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{wire.MetaID: "a1", wire.MetaType: "orders.placed", wire.MetaSource: "/shop", wire.MetaSpecVersion: "1.0",
			wire.MetaContentType: "application/json; charset=utf-8", "ce_traceparent": "00-x", "ce_count": "3"}
		for k, v := range want {
			if md[k] != v {
				t.Errorf("%s = %q, want %q", k, md[k], v)
			}
		}
		if string(data) != `{"n":1}` {
			t.Errorf("data %s, want {\"n\":1}", data)
		}
	})
	t.Run("Base64", func(t *testing.T) {
		md, data, err := wire.ReadStructured([]byte(`{"specversion":"1.0","id":"a2","type":"t","source":"/s","datacontenttype":"application/octet-stream","data_base64":"AAEC"}`))
		if err != nil || string(data) != "\x00\x01\x02" || md[wire.MetaContentType] != "application/octet-stream" {
			t.Errorf("ReadStructured = %v, %q, %v", md, data, err)
		}
	})
	t.Run("DefaultContentTypeIsJSON", func(t *testing.T) {
		md, data, err := wire.ReadStructured([]byte(`{"specversion":"1.0","id":"a3","type":"t","source":"/s","data":[1,2]}`))
		if err != nil || string(data) != "[1,2]" || md[wire.MetaContentType] != "application/json" {
			t.Errorf("ReadStructured = %v, %q, %v", md, data, err)
		}
	})
	t.Run("TextData", func(t *testing.T) {
		_, data, err := wire.ReadStructured([]byte(`{"specversion":"1.0","id":"a4","type":"t","source":"/s","datacontenttype":"text/plain","data":"hello"}`))
		if err != nil || string(data) != "hello" {
			t.Errorf("ReadStructured = %q, %v", data, err)
		}
	})
	t.Run("Batch", func(t *testing.T) {
		if _, _, err := wire.ReadStructured([]byte(` [{"id":"1"}]`)); !errors.Is(err, wire.ErrBatch) {
			t.Errorf("batch: err = %v, want ErrBatch", err)
		}
	})
	t.Run("MissingRequired", func(t *testing.T) {
		if _, _, err := wire.ReadStructured([]byte(`{"specversion":"1.0","type":"t"}`)); err == nil {
			t.Error("an event without id was read")
		}
	})
	t.Run("NotJSON", func(t *testing.T) {
		if _, _, err := wire.ReadStructured([]byte(`<xml/>`)); err == nil {
			t.Error("a body that is no JSON was read")
		}
	})
}

func TestIsLane(t *testing.T) {
	t.Parallel()
	for topic, want := range map[string]bool{
		wire.RetryTopic("orders", "billing"):  true,
		wire.PoisonTopic("orders", "billing"): true,
		"orders":                              false,
		"orders.retryable":                    false,
	} {
		if got := wire.IsLane(topic); got != want {
			t.Errorf("IsLane(%q) = %v, want %v", topic, got, want)
		}
	}
}
