package main

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/busline/busline/config"
)

// redacted replaces a secret in config show's output.
const redacted = "xxxxx"

// writeEffective prints cfg as YAML with every default filled in and each
// group's effective settings; section is the decoded transport section, or
// nil.
func writeEffective(w io.Writer, cfg *config.Config, section any) error {
	y := &yamlWriter{w: w}
	y.scalar(0, "service", cfg.Service)
	y.scalar(0, "shutdown_grace", cfg.ShutdownGrace)
	y.key(0, "transport")
	y.scalar(1, "kind", cfg.Transport.Kind)
	if section != nil {
		v := reflect.ValueOf(section).Elem()
		if v.NumField() > 0 && !v.IsZero() {
			y.key(1, cfg.Transport.Kind)
			y.fields(2, v, true)
		}
	}
	y.key(0, "retry")
	y.fields(1, reflect.ValueOf(cfg.Retry), false)
	groups := make([]string, 0, len(cfg.Subscriptions))
	for g := range cfg.Subscriptions {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	if len(groups) == 0 {
		y.line(0, "subscriptions: {}")
	} else {
		y.key(0, "subscriptions")
	}
	for _, g := range groups {
		y.key(1, g)
		s := cfg.SubscriptionFor(g)
		s.Retry = nil
		y.fields(2, reflect.ValueOf(s), false)
		y.key(2, "retry")
		y.fields(3, reflect.ValueOf(cfg.RetryFor(g)), false)
	}
	if len(cfg.Topics) == 0 {
		y.line(0, "topics: {}")
		return nil
	}
	y.key(0, "topics")
	names := make([]string, 0, len(cfg.Topics))
	for n := range cfg.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		y.scalar(1, n, cfg.Topics[n])
	}
	return nil
}

// yamlWriter writes block-style YAML from Go values with yaml tags.
type yamlWriter struct{ w io.Writer }

func (y *yamlWriter) line(depth int, s string) {
	fmt.Fprintf(y.w, "%s%s\n", strings.Repeat("  ", depth), s)
}

func (y *yamlWriter) key(depth int, k string) { y.line(depth, quote(k)+":") }

func (y *yamlWriter) scalar(depth int, k string, v any) {
	y.line(depth, quote(k)+": "+format(reflect.ValueOf(v), k))
}

// fields writes v's yaml-tagged fields; with skipZero, zero and nil ones
// are left out.
func (y *yamlWriter) fields(depth int, v reflect.Value, skipZero bool) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		if skipZero && fv.IsZero() {
			continue
		}
		switch {
		case fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[time.Duration]():
			if fv.IsZero() {
				continue
			}
			y.key(depth, name)
			y.fields(depth+1, fv, skipZero)
		case fv.Kind() == reflect.Map:
			y.key(depth, name)
			keys := fv.MapKeys()
			sort.Slice(keys, func(a, b int) bool { return keys[a].String() < keys[b].String() })
			for _, k := range keys {
				y.line(depth+1, quote(k.String())+": "+format(fv.MapIndex(k), name))
			}
		default:
			y.line(depth, name+": "+format(fv, name))
		}
	}
}

// format renders a scalar or a list of scalars; key decides redaction.
func format(v reflect.Value, key string) string {
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return formatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.String:
		return quote(redact(key, v.String()))
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice, reflect.Array:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = format(v.Index(i), key)
		}
		return "[" + strings.Join(items, ", ") + "]"
	default:
		return quote(fmt.Sprint(v.Interface()))
	}
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

// redact hides the value of a secret key and the password of a URL.
func redact(key, v string) string {
	if v == "" {
		return v
	}
	k := strings.ToLower(key)
	for _, secret := range []string{"password", "secret", "token", "passphrase"} {
		if strings.Contains(k, secret) {
			return redacted
		}
	}
	if strings.Contains(v, "://") {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return u.Redacted()
			}
		}
	}
	return v
}

// quote returns s as a plain YAML scalar when that reads back as the same
// string, else double-quoted.
func quote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r)) {
			plain = false
			break
		}
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~":
		plain = false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		plain = false
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}
