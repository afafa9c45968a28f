package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the YAML file at path and parses it with [Parse], expanding
// ${VAR} references from the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(path) {
			return nil, fmt.Errorf("config: %w (the path is relative to the working directory)", err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, os.LookupEnv)
}

// Parse expands environment references in data (see the package
// documentation), strictly decodes it as YAML into a Config with its defaults
// filled, and validates it. filename names data in problems; lookupEnv
// resolves references, such as os.LookupEnv, and nil means no variable is set.
//
// On any problem Parse returns a nil Config and an [*Error] that lists every
// problem found, each with its file, line, column and key path.
func Parse(data []byte, filename string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	exp, problems := expandEnv(data, filename, lookupEnv)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}

	root, p := parseYAML(exp.text, filename)
	if p != nil {
		p.Message = exp.redact(p.Message)
		return nil, &Error{Problems: []Problem{*p}}
	}
	src := newSource(filename, exp, root)
	top := root
	if top != nil && top.Kind == yaml.DocumentNode && len(top.Content) > 0 {
		top = top.Content[0]
	}
	if top == nil || top.Kind == yaml.DocumentNode || isNull(resolve(top)) {
		return nil, &Error{Problems: []Problem{{File: filename, Message: "empty config: at least `service:` is required"}}}
	}
	top = resolve(top)
	if top.Kind != yaml.MappingNode {
		return nil, &Error{Problems: []Problem{src.problem(nodePos(top), "",
			"the top level must be a mapping of keys such as service: and transport:, got "+src.show(top))}}
	}

	// A group's retry: section overrides the global policy's keys it sets:
	// the global retry: section is decoded first, and each group's policy
	// starts from it.
	global := &Config{src: src}
	global.setDefaults()
	pre := &decoder{src: src}
	for _, e := range pre.entries(top, "", 0) {
		if e.key.Value == "retry" {
			pre.decode(e.value, reflect.ValueOf(&global.Retry).Elem(), "retry")
		}
	}
	cfg := &Config{src: src}
	cfg.setDefaults()
	d := &decoder{src: src, record: true, inherit: func(path string, t reflect.Type) (reflect.Value, bool) {
		if t != retryType || path == "retry" {
			return reflect.Value{}, false
		}
		return reflect.ValueOf(global.Retry.clone()), true
	}}
	d.decode(top, reflect.ValueOf(cfg).Elem(), "")
	src.shown = d.shown

	// A value that failed to decode kept its default; do not also report
	// what Validate thinks of that default.
	failed := map[string]bool{}
	for _, p := range d.problems {
		failed[p.Path] = true
	}
	for _, p := range cfg.validate() {
		if !failed[p.Path] {
			d.problems = append(d.problems, p)
		}
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlLine extracts the line from a yaml.v3 syntax error.
var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// parseYAML parses text as a single YAML document. It returns a nil node for
// an empty text, and a problem for a syntax error or a second document.
func parseYAML(text []byte, file string) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxProblem(err, file)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err, file)
	default:
		return nil, &Problem{File: file, Line: next.Line, Message: "a config is a single YAML document: remove this --- line and the document after it"}
	}
	return &root, nil
}

// syntaxProblem turns a yaml.v3 syntax error into a Problem on its line.
// yaml.v3 numbers the lines of parser errors (as opposed to scanner errors)
// from 0, and leaves out line 0: syntaxProblem counts from 1.
func syntaxProblem(err error, file string) *Problem {
	msg := err.Error()
	p := &Problem{File: file}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	if isParserError(msg) {
		p.Line++
	}
	p.Message = "invalid YAML: " + msg
	return p
}

// isParserError reports whether msg is one of the problems yaml.v3's parser
// (rather than its reader or scanner) reports.
func isParserError(msg string) bool {
	return strings.HasPrefix(msg, "did not find expected ") ||
		strings.HasPrefix(msg, "found duplicate %") ||
		msg == "found incompatible YAML document" ||
		msg == "found undefined tag handle"
}

// retryType is the type whose values Parse starts from the global policy.
var retryType = reflect.TypeFor[Retry]()
