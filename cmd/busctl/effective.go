package main

import (
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/busline/busline/config"
)

// writeEffective prints cfg as YAML, encoded by yaml.v3, with every default
// filled in and each group's effective settings; section is the decoded
// transport section, or nil. Every secret is redacted (see redactNode).
func writeEffective(w io.Writer, cfg *config.Config, section any) error {
	doc := mapping()
	doc.add("service", toNode(reflect.ValueOf(cfg.Service), false))
	doc.add("shutdown_grace", toNode(reflect.ValueOf(cfg.ShutdownGrace), false))
	transport := mapping()
	transport.add("kind", toNode(reflect.ValueOf(cfg.Transport.Kind), false))
	if section != nil { // with the transport's defaults filled in
		if n := toNode(reflect.ValueOf(section), false); n != nil && len(n.Content) > 0 {
			transport.add(cfg.Transport.Kind, n)
		}
	}
	doc.add("transport", transport.Node)
	doc.add("retry", toNode(reflect.ValueOf(cfg.Retry), false))
	subs := mapping()
	for _, g := range configGroups(cfg) {
		s := cfg.SubscriptionFor(g)
		s.Retry = nil // replaced by the group's whole effective policy
		n := toNode(reflect.ValueOf(s), false)
		n.Content = append(n.Content, key("retry"), toNode(reflect.ValueOf(cfg.RetryFor(g)), false))
		subs.add(g, n)
	}
	doc.add("subscriptions", subs.Node)
	doc.add("topics", toNode(reflect.ValueOf(cfg.Topics), false))
	redactNode(doc.Node)

	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc.Node); err != nil {
		return fmt.Errorf("encode the configuration: %w", err)
	}
	return enc.Close()
}

// mappingNode builds a YAML mapping in order.
type mappingNode struct{ *yaml.Node }

// mapping returns an empty mapping, written {} while it stays empty.
func mapping() mappingNode {
	return mappingNode{&yaml.Node{Kind: yaml.MappingNode}}
}

func (m mappingNode) add(k string, v *yaml.Node) {
	if v != nil {
		m.Content = append(m.Content, key(k), v)
	}
}

func key(k string) *yaml.Node { return str(k) }

// str is a string scalar: yaml.v3 quotes it where it would read back as
// another type; one with punctuation, such as a URL, is double-quoted.
func str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r))
	}) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// plain is a scalar written as it is: a number or a bool.
func plain(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

// toNode converts v, a value of the config or of a transport's Config, to
// a YAML node by its yaml tags. Durations are written as config files write
// them ("1m"); lists of scalars and empty collections in flow style. With
// skipZero, zero fields are left out, and a struct left empty is nil.
func toNode(v reflect.Value, skipZero bool) *yaml.Node {
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return str(formatDuration(time.Duration(v.Int())))
	}
	if m, ok := v.Interface().(yaml.Marshaler); ok { // a type that says how it is written, such as transports.Secret
		var n yaml.Node
		if err := n.Encode(m); err == nil {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
				return str(n.Value) // quoted as every other string
			}
			return &n
		}
	}
	switch v.Kind() {
	case reflect.String:
		return str(v.String())
	case reflect.Bool:
		return plain(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return plain(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return plain(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		return plain(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case reflect.Slice, reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			if item := toNode(v.Index(i), false); item != nil {
				n.Content = append(n.Content, item)
				if item.Kind != yaml.ScalarNode {
					n.Style = 0
				}
			}
		}
		return n
	case reflect.Map:
		n := mapping()
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		byText := mapKeys(v)
		for _, k := range slices.Sorted(maps.Keys(byText)) {
			n.add(k, toNode(v.MapIndex(byText[k]), skipZero))
		}
		return n.Node
	case reflect.Struct:
		n := mapping()
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fv := v.Field(i)
			if f.Anonymous && opts == "inline" { // its keys are the struct's own
				if inner := toNode(fv, skipZero); inner != nil {
					n.Content = append(n.Content, inner.Content...)
				}
				continue
			}
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			if skipZero && fv.IsZero() {
				continue
			}
			n.add(name, toNode(fv, skipZero))
		}
		if skipZero && len(n.Content) == 0 {
			return nil
		}
		return n.Node
	default:
		return str(fmt.Sprint(v.Interface()))
	}
}

// mapKeys indexes a map's keys by their text.
func mapKeys(v reflect.Value) map[string]reflect.Value {
	keys := make(map[string]reflect.Value, v.Len())
	for _, k := range v.MapKeys() {
		keys[fmt.Sprint(k.Interface())] = k
	}
	return keys
}

// formatDuration writes d as config files do: "1m", not "1m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
