package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// defaultKind is the transport used when the YAML names none.
const defaultKind = "memory"

// Transport selects the broker. Besides kind, every key under transport: is the
// section of one transport kind, such as
//
//	transport:
//	  kind: rabbitmq
//	  rabbitmq:
//	    url: amqp://localhost:5672/
//
// This package does not know the kinds or their settings: the transport's own
// package decodes its section with [Transport.Decode]. Sections of kinds other
// than Kind are kept and ignored, so switching brokers is a one-line change.
//
// A Transport is safe for concurrent use once loaded.
type Transport struct {
	// Kind names the transport in lower case, such as "memory" or
	// "rabbitmq": letters, digits, "_" and "-". Default "memory" when the
	// transport section or its kind is absent.
	Kind string

	sections map[string]*yaml.Node // kind -> its section, nil for no value
	src      *source
}

// HasSection reports whether the YAML has a section for kind under transport:.
func (t *Transport) HasSection(kind string) bool {
	_, ok := t.sections[kind]
	return ok
}

// Decode strictly decodes the section of t.Kind into into, a non-nil pointer
// to a struct with yaml tags, the way [Parse] decodes a Config: unknown keys,
// values of the wrong type and malformed durations (time.Duration fields take
// "30s", "1m", ...) yield an [*Error] whose problems give the file, line,
// column and key path, with a "did you mean" among the struct's keys. Nested
// structs, pointers, slices, maps, ",inline" structs and types implementing
// yaml.Unmarshaler or encoding.TextUnmarshaler are supported.
//
// Fields absent from the section, and all fields when there is no section,
// keep the values into already has, so set defaults before calling Decode.
func (t *Transport) Decode(into any) error {
	rv := reflect.ValueOf(into)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Transport.Decode needs a non-nil pointer to a struct, got %T", into)
	}
	n := t.sections[t.Kind]
	if n == nil || isNull(n) {
		return nil
	}
	d := &decoder{src: t.src}
	d.decode(n, rv.Elem(), "transport."+t.Kind)
	return d.err()
}

// transport decodes the transport: mapping: kind, and the sections kept as
// nodes for Decode.
func (d *decoder) transport(n *yaml.Node, t *Transport, path string) {
	if n.Kind != yaml.MappingNode {
		msg := "expected a mapping such as {kind: rabbitmq}, got " + d.src.show(n)
		if n.Kind == yaml.ScalarNode && d.src.tainted(n) == nil && validKind(n.Value) {
			msg += " (did you mean transport: {kind: " + n.Value + "}?)"
		}
		d.fail(n, path, msg)
		return
	}
	t.src = d.src
	hasKind := false
	for _, e := range d.entries(n, path, 0) {
		name := e.key.Value
		p := d.keyPath(path, e.key)
		if d.record {
			d.src.keyPos[p] = nodePos(e.key)
		}
		if name == "kind" {
			v := resolve(e.value)
			hasKind = !isNull(v)
			if v.Kind == yaml.ScalarNode && v.ShortTag() != "!!str" && hasKind {
				d.fail(v, p, "expected a transport kind such as \"rabbitmq\", got "+d.src.show(v))
				continue
			}
			d.decode(v, reflect.ValueOf(&t.Kind).Elem(), p)
			continue
		}
		if t.sections == nil {
			t.sections = map[string]*yaml.Node{}
		}
		v := resolve(e.value)
		if d.record {
			d.src.valuePos[p] = nodePos(v)
		}
		t.sections[name] = v
	}
	if hasKind {
		return
	}
	// The section names, with those from the environment shown as ${VAR}.
	kinds := make([]string, 0, len(t.sections))
	for k := range t.sections {
		p := join(path, k)
		if shown, ok := d.shown[p]; ok {
			k = strings.TrimPrefix(shown, displayPath(d.shown, path)+".")
		}
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	at := nodePos(n)
	if p, ok := d.src.keyPos[path]; ok {
		at = p // the transport: key
	}
	switch len(kinds) {
	case 0:
	case 1:
		d.failAt(at, path, "transport.kind is missing (did you mean kind: "+kinds[0]+"?)")
	default:
		d.failAt(at, path, "transport.kind is missing: set it to the transport to use, one of "+strings.Join(kinds, ", "))
	}
}

// validKind reports whether s is a transport kind: [a-z0-9_-]+.
func validKind(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// err returns the problems as an *Error, or nil when there are none.
func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	return &Error{Problems: sortProblems(d.problems)}
}
