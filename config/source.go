package config

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// pos is a line and column, from 1, in the expanded text that yaml parsed.
type pos struct{ line, col int }

func (p pos) less(q pos) bool {
	return p.line < q.line || (p.line == q.line && p.col < q.col)
}

func nodePos(n *yaml.Node) pos { return pos{n.Line, n.Column} }

// source is what problems need to know about the text a Config came from: the
// file name, how to map positions back to the original text, which values came
// from the environment, and where each key path was set.
type source struct {
	file string
	exp  *expansion

	// starts are the distinct start positions of every node, sorted: a
	// scalar's text ends before the next start.
	starts []pos

	valuePos map[string]pos      // key path -> position of its value
	keyPos   map[string]pos      // key path -> position of its key
	taint    map[string][]string // key path -> variables its scalar value came from
	shown    map[string]string   // key path -> how problems show it, see decoder.shown
}

func newSource(file string, exp *expansion, root *yaml.Node) *source {
	s := &source{
		file:     file,
		exp:      exp,
		valuePos: map[string]pos{},
		keyPos:   map[string]pos{},
		taint:    map[string][]string{},
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		s.starts = append(s.starts, nodePos(n))
		for _, c := range n.Content {
			walk(c)
		}
	}
	if root != nil {
		walk(root)
	}
	slices.SortFunc(s.starts, func(a, b pos) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	s.starts = slices.Compact(s.starts)
	return s
}

// problem returns a Problem located at p, mapped back to the original text; a
// zero p gives a Problem without a position.
func (s *source) problem(p pos, path, msg string) Problem {
	pr := Problem{Path: path, Message: msg}
	if s == nil {
		return pr
	}
	pr.File = s.file
	if p.line > 0 {
		pr.Line, pr.Column = p.line, s.origCol(p)
	}
	return pr
}

// origCol maps a column of the expanded text to the original text. A column
// inside an inserted value maps to the "${" of its reference.
func (s *source) origCol(p pos) int {
	if s.exp == nil {
		return p.col
	}
	cols := s.exp.cols[p.line]
	if len(cols) == 0 || p.col < 1 {
		return p.col
	}
	if i := p.col - 1; i < len(cols) {
		return cols[i]
	}
	return cols[len(cols)-1] + p.col - len(cols)
}

// tainted returns the environment variables whose values make up part of
// scalar n, judging by the text from n's start to the next node's start.
func (s *source) tainted(n *yaml.Node) []string {
	if s == nil || s.exp == nil || len(s.exp.spans) == 0 || n.Kind != yaml.ScalarNode {
		return nil
	}
	start := nodePos(n)
	i, _ := slices.BinarySearchFunc(s.starts, start, func(a, b pos) int {
		if a.less(b) || a == b {
			return -1
		}
		return 1
	})
	end := pos{line: int(^uint(0) >> 1)}
	if i < len(s.starts) {
		end = s.starts[i]
	}
	first, _ := slices.BinarySearchFunc(s.exp.spans, start, func(sp envSpan, p pos) int {
		if (pos{sp.line, sp.start}).less(p) {
			return -1
		}
		return 1
	})
	var names []string
	for _, sp := range s.exp.spans[first:] {
		if !(pos{sp.line, sp.start}).less(end) {
			break
		}
		if !slices.Contains(names, sp.name) {
			names = append(names, sp.name)
		}
	}
	return names
}

// show describes scalar n for a message: quoted, or by the variables it came
// from when the environment supplied any part of it, so that no secret is
// printed.
func (s *source) show(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if names := s.tainted(n); len(names) > 0 {
		return fromVars(names)
	}
	return quote(n.Value)
}

// fromVars names the variables a value came from: a value from ${A}, ${B}.
func fromVars(names []string) string { return "a value from " + refs(names) }

// refs writes names as references: ${A}, ${B}.
func refs(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "${" + n + "}"
	}
	return strings.Join(out, ", ")
}

// quote quotes s for a message, shortening it past 80 runes.
func quote(s string) string {
	const maxRunes = 80
	if utf8.RuneCountInString(s) > maxRunes {
		s = string([]rune(s)[:maxRunes]) + "…"
	}
	return strconv.Quote(s)
}
