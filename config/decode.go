package config

import (
	"encoding"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	transportType       = reflect.TypeFor[Transport]()
	nodeType            = reflect.TypeFor[yaml.Node]()
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxMergeDepth bounds how deep merge keys (<<) may nest.
const maxMergeDepth = 32

// maxSteps bounds the values a decoder visits, so that aliases referring to
// aliases cannot make a small file take forever to decode.
const maxSteps = 200_000

// decoder strictly decodes yaml nodes into Go values by their yaml struct
// tags, collecting a Problem for every key it does not know and every value of
// the wrong type instead of stopping at the first.
type decoder struct {
	src      *source
	problems []Problem

	// record makes decode note in src where each key path was set, for the
	// problems Validate finds later.
	record bool

	// shown maps the key paths that hold a key from the environment to the
	// way problems show them, with ${VAR} in place of the key.
	shown map[string]string

	// merged caches the entries of mappings, so that merge keys over aliases
	// cost each mapping once.
	merged map[*yaml.Node][]entry

	// steps counts the nodes decoded, aliases followed each time, against
	// maxSteps.
	steps int

	// inherit, when not nil, gives the value a nil pointer of type t at path
	// starts from before its node is decoded over it, in place of zero:
	// Parse starts each group's retry policy from the global one.
	inherit func(path string, t reflect.Type) (reflect.Value, bool)
}

// defaulter is implemented by the types whose map entries start from their
// defaults rather than from zero.
type defaulter interface{ setDefaults() }

func (d *decoder) fail(n *yaml.Node, path, msg string) {
	d.failAt(nodePos(n), path, msg)
}

func (d *decoder) failAt(p pos, path, msg string) {
	d.problems = append(d.problems, d.src.problem(p, displayPath(d.shown, path), msg))
}

// keyPath returns the key path of key k under path, and notes how to show it
// when k came from the environment.
func (d *decoder) keyPath(path string, k *yaml.Node) string {
	p := join(path, k.Value)
	if names := d.src.tainted(k); len(names) > 0 {
		if d.shown == nil {
			d.shown = map[string]string{}
		}
		d.shown[p] = join(displayPath(d.shown, path), refs(names))
	}
	return p
}

// displayPath returns path as problems show it: with the keys that came from
// the environment, per shown, replaced by their ${VAR} references.
func displayPath(shown map[string]string, path string) string {
	best := ""
	for real := range shown {
		if len(real) > len(best) && strings.HasPrefix(path, real) &&
			(len(path) == len(real) || path[len(real)] == '.' || path[len(real)] == '[') {
			best = real
		}
	}
	if best == "" {
		return path
	}
	return shown[best] + path[len(best):]
}

// join appends a key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// decode decodes n into v, which must be settable. A null leaves v unchanged,
// so absent and empty keys keep their defaults.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if d.steps++; d.steps > maxSteps {
		if d.steps == maxSteps+1 {
			d.fail(n, path, "the config expands to too many values through aliases (*name): use fewer aliases")
		}
		return
	}
	if d.record {
		d.src.valuePos[path] = nodePos(n)
		if names := d.src.tainted(n); len(names) > 0 {
			d.src.taint[path] = names
		}
	}
	if isNull(n) {
		return
	}
	if n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode {
		d.fail(n, path, "unsupported YAML node here")
		return
	}
	t := v.Type()
	switch t {
	case nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case transportType:
		d.transport(n, v.Addr().Interface().(*Transport), path)
		return
	case durationType:
		d.duration(n, v, path)
		return
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
			if d.inherit != nil {
				if base, ok := d.inherit(path, t.Elem()); ok {
					v.Elem().Set(base)
				}
			}
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, path, d.invalid(n, err))
		}
		return
	}
	if n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, d.invalid(n, err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, got "+d.src.show(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "expected true or false, got "+d.src.show(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.integer(n, v, path)
	case reflect.Float32, reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.fail(n, path, "expected a number, got "+d.src.show(n))
			return
		}
		if v.OverflowFloat(f) {
			d.fail(n, path, "number out of range, got "+d.src.show(n))
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.fail(n, path, "cannot decode into a field of type "+t.String())
			return
		}
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, d.invalid(n, err))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.fail(n, path, "cannot decode into a field of type "+t.String())
	}
}

// invalid words the error a value's own decoder returned, unless the value
// came from the environment: the error might quote it.
func (d *decoder) invalid(n *yaml.Node, err error) string {
	if names := d.src.tainted(n); len(names) > 0 {
		return "invalid " + fromVars(names)
	}
	return "invalid value " + quote(n.Value) + ": " + err.Error()
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(n, path, "expected an integer, got "+d.src.show(n))
		return
	}
	var (
		signed   = v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64
		i        int64
		u        uint64
		errI     = n.Decode(&i)
		errU     = n.Decode(&u)
		inRange  bool
		bitsSize = v.Type().Bits()
	)
	if signed {
		inRange = errI == nil && !v.OverflowInt(i)
	} else {
		inRange = errU == nil && !v.OverflowUint(u)
	}
	if !inRange {
		lo, hi := "0", strconv.FormatUint(1<<bitsSize-1, 10)
		if signed {
			lo = strconv.FormatInt(-1<<(bitsSize-1), 10)
			hi = strconv.FormatInt(1<<(bitsSize-1)-1, 10)
		}
		d.fail(n, path, "expected an integer from "+lo+" to "+hi+", got "+d.src.show(n))
		return
	}
	if signed {
		v.SetInt(i)
	} else {
		v.SetUint(u)
	}
}

// duration accepts what time.ParseDuration does, such as "30s", "1m30s" or
// "250ms"; a plain number other than 0 has no unit and is rejected.
func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	const want = `expected a duration such as "30s" or "1m", got `
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, want+d.src.show(n))
		return
	}
	switch tag := n.ShortTag(); {
	case tag == "!!int" || tag == "!!float":
		var f float64
		if n.Decode(&f) == nil && f == 0 {
			v.SetInt(0)
			return
		}
		msg := want + d.src.show(n)
		if tag == "!!int" && d.src.tainted(n) == nil {
			msg += " (a number needs a unit: write " + strconv.Quote(n.Value+"s") + " or " + strconv.Quote(n.Value+"ms") + ")"
		}
		d.fail(n, path, msg)
	case tag == "!!str":
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, want+d.src.show(n))
			return
		}
		v.SetInt(int64(dur))
	default:
		d.fail(n, path, want+d.src.show(n))
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got "+d.src.show(n)+" (write [a, b] or one \"- item\" per line)")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of keys to values, got "+d.src.show(n))
		return
	}
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, e := range d.entries(n, path, 0) {
		key := reflect.New(t.Key()).Elem()
		if t.Key().Kind() == reflect.String {
			key.SetString(e.key.Value)
		} else {
			before := len(d.problems)
			d.decode(e.key, key, d.keyPath(path, e.key))
			if len(d.problems) > before {
				continue
			}
		}
		p := d.keyPath(path, e.key)
		if d.record {
			d.src.keyPos[p] = nodePos(e.key)
		}
		elem := reflect.New(t.Elem()).Elem()
		if df, ok := elem.Addr().Interface().(defaulter); ok {
			df.setDefaults()
		}
		d.decode(e.value, elem, p)
		v.SetMapIndex(key, elem)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of keys to values, got "+d.src.show(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, e := range d.entries(n, path, 0) {
		name := e.key.Value
		p := d.keyPath(path, e.key)
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == name })
		if i < 0 {
			d.fail(e.key, p, d.unknownKey(e.key, names(fields)))
			continue
		}
		if d.record {
			d.src.keyPos[p] = nodePos(e.key)
		}
		fv := v.FieldByIndex(fields[i].index)
		if !fv.CanSet() {
			continue
		}
		d.decode(e.value, fv, p)
	}
}

// unknownKey words the problem for key, which is none of known.
func (d *decoder) unknownKey(key *yaml.Node, known []string) string {
	if names := d.src.tainted(key); len(names) > 0 {
		return "unknown key from " + refs(names) + " (known keys: " + strings.Join(known, ", ") + ")"
	}
	msg := "unknown key " + quote(key.Value)
	if s := suggest(key.Value, known); s != "" {
		return msg + " (did you mean " + strconv.Quote(s) + "?)"
	}
	if len(known) == 0 {
		return msg + " (no keys are allowed here)"
	}
	return msg + " (known keys: " + strings.Join(known, ", ") + ")"
}

// entry is one key and its value in a mapping.
type entry struct{ key, value *yaml.Node }

// entries returns the entries of mapping n with merge keys (<<) applied: keys
// written in n win over merged ones, and earlier merged mappings over later
// ones. It reports duplicate keys and keys that are not scalars, and leaves
// them out.
func (d *decoder) entries(n *yaml.Node, path string, depth int) []entry {
	if es, ok := d.merged[n]; ok {
		return es
	}
	es := d.mergeEntries(n, path, depth)
	if d.merged == nil {
		d.merged = map[*yaml.Node][]entry{}
	}
	d.merged[n] = es
	return es
}

// mergeEntries computes [decoder.entries].
func (d *decoder) mergeEntries(n *yaml.Node, path string, depth int) []entry {
	var own, merged []entry
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "expected a key, got "+d.src.show(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path, depth)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, d.keyPath(path, k), "duplicate key "+d.src.show(k)+" (first set at line "+strconv.Itoa(first.Line)+"): remove one of them")
			continue
		}
		seen[k.Value] = k
		own = append(own, entry{k, val})
	}
	for _, e := range merged {
		if _, dup := seen[e.key.Value]; !dup {
			seen[e.key.Value] = e.key
			own = append(own, e)
		}
	}
	return own
}

// merge returns the entries a merge key's value brings in.
func (d *decoder) merge(val *yaml.Node, path string, depth int) []entry {
	const want = "a merge key << takes a mapping or a list of mappings, such as <<: *defaults"
	if depth >= maxMergeDepth {
		d.fail(val, path, "merge keys (<<) nest too deep")
		return nil
	}
	val = resolve(val)
	switch val.Kind {
	case yaml.MappingNode:
		return d.entries(val, path, depth+1)
	case yaml.SequenceNode:
		var out []entry
		seen := map[string]bool{}
		for _, item := range val.Content {
			item = resolve(item)
			if item.Kind != yaml.MappingNode {
				d.fail(item, path, want)
				continue
			}
			for _, e := range d.entries(item, path, depth+1) {
				if !seen[e.key.Value] {
					seen[e.key.Value] = true
					out = append(out, e)
				}
			}
		}
		return out
	}
	d.fail(val, path, want)
	return nil
}

// field is a struct field decodable from YAML.
type field struct {
	name  string
	index []int
}

// fieldsOf lists the fields of struct type t the way yaml.v3 names them: by
// the yaml tag, else the lower-cased field name, skipping "-" and unexported
// fields, and flattening ",inline" structs.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for _, sub := range fieldsOf(f.Type) {
				out = append(out, field{sub.name, append([]int{i}, sub.index...)})
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, []int{i}})
	}
	return out
}

func names(fields []field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}
