package config

import (
	"bytes"
	"sort"
	"strings"
	"unicode/utf8"
)

// expansion is the configuration text after ${VAR} expansion, with what is
// needed to point back into the original text: expansion never adds or removes
// a line, so only columns move.
type expansion struct {
	text []byte

	// cols maps, for each line that changed, the rune index in the expanded
	// line to the column (from 1) in the original line; the last element is
	// the column just past the line's end. Lines not in the map are unchanged.
	cols map[int][]int

	// spans are the places where a value from the environment was inserted,
	// in the order of the text.
	spans []envSpan
}

// envSpan is a value inserted from an environment variable, on one line of
// the expanded text, from column start up to but not including column end.
type envSpan struct {
	line, start, end int
	name             string
	value            string
}

// redact replaces in msg every value inserted from the environment by its
// reference, longest first: messages from the YAML parser quote the text
// they stumble on, which may hold a secret.
func (e *expansion) redact(msg string) string {
	spans := append([]envSpan(nil), e.spans...)
	sort.Slice(spans, func(i, j int) bool { return len(spans[i].value) > len(spans[j].value) })
	for _, s := range spans {
		if s.value != "" {
			msg = strings.ReplaceAll(msg, s.value, "${"+s.name+"}")
		}
	}
	return msg
}

// expander holds the state of [expandEnv] across lines: quoted scalars may span
// lines, and so do block scalars (| and >), whose lines hold no comments.
type expander struct {
	file   string
	lookup func(string) (string, bool)

	out      []byte
	exp      *expansion
	problems []Problem

	quote       byte // '"' or '\'' inside a quoted scalar, else 0
	block       bool // inside the content of a block scalar
	blockIndent int  // the indentation of the block scalar's header line
}

// expandEnv replaces ${VAR}, ${VAR:-default} and $$ outside YAML comments; see
// the package documentation for the rules. It reports every reference it cannot
// expand.
func expandEnv(data []byte, file string, lookup func(string) (string, bool)) (*expansion, []Problem) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	x := &expander{
		file:   file,
		lookup: lookup,
		out:    make([]byte, 0, len(data)),
		exp:    &expansion{cols: map[int][]int{}},
	}
	for line, rest := 1, data; len(rest) > 0; line++ {
		end, next := lineEnd(rest)
		x.line(rest[:end], line)
		x.out = append(x.out, rest[end:next]...)
		rest = rest[next:]
	}
	x.exp.text = x.out
	return x.exp, x.problems
}

// lineEnd returns the end of the first line of b and the start of the next,
// breaking lines where YAML does: at \n, \r\n, \r, NEL, LS and PS.
func lineEnd(b []byte) (end, next int) {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\n':
			return i, i + 1
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				return i, i + 2
			}
			return i, i + 1
		case 0xC2:
			if i+1 < len(b) && b[i+1] == 0x85 {
				return i, i + 2
			}
		case 0xE2:
			if i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9) {
				return i, i + 3
			}
		}
	}
	return len(b), len(b)
}

// line expands one line (without its line break).
func (x *expander) line(src []byte, lineNo int) {
	indent := len(src) - len(bytes.TrimLeft(src, " "))
	if x.block {
		if len(bytes.TrimSpace(src)) == 0 || indent > x.blockIndent {
			x.expandAll(src, lineNo)
			return
		}
		x.block = false
	}

	var (
		cols      = make([]int, 0, len(src)+1)
		changed   bool
		col       = 1 // column in the original line of the rune at i
		prevSpace = true
		lastSig   = rune(0) // last non-blank rune before i on this line
		content   = len(src)
	)
	emit := func(b []byte, origCol int) {
		x.out = append(x.out, b...)
		for range utf8.RuneCount(b) {
			cols = append(cols, origCol)
		}
	}
	for i := 0; i < len(src); {
		r, w := utf8.DecodeRune(src[i:])
		if r == '$' {
			if n, ok := x.dollar(src[i:], lineNo, col, len(cols)+1, emit); ok {
				changed = true
				col += utf8.RuneCount(src[i : i+n])
				i += n
				prevSpace, lastSig = false, '$'
				continue
			}
		}
		switch {
		case x.quote == '"':
			if r == '\\' && i+w < len(src) {
				// An escaped rune never closes the scalar.
				emit(src[i:i+w], col)
				i, col = i+w, col+1
				r, w = utf8.DecodeRune(src[i:])
				if r == '$' {
					continue
				}
			} else if r == '"' {
				x.quote = 0
			}
		case x.quote == '\'':
			if r == '\'' {
				if i+1 < len(src) && src[i+1] == '\'' {
					emit(src[i:i+2], col)
					i, col = i+2, col+2
					continue
				}
				x.quote = 0
			}
		case r == '#' && prevSpace:
			content = i
			emit(src[i:], col)
			i = len(src)
			continue
		case (r == '"' || r == '\'') && startsScalar(lastSig, prevSpace):
			x.quote = byte(r)
		}
		emit(src[i:i+w], col)
		i, col = i+w, col+1
		prevSpace = r == ' ' || r == '\t'
		if !prevSpace {
			lastSig = r
		}
	}
	if changed {
		x.exp.cols[lineNo] = append(cols, col)
	}
	if x.quote == 0 && blockHeader(src[:content]) {
		x.block, x.blockIndent = true, indent
	}
}

// expandAll expands a line of a block scalar, where # starts no comment.
func (x *expander) expandAll(src []byte, lineNo int) {
	cols := make([]int, 0, len(src)+1)
	changed := false
	emit := func(b []byte, origCol int) {
		x.out = append(x.out, b...)
		for range utf8.RuneCount(b) {
			cols = append(cols, origCol)
		}
	}
	col := 1
	for i := 0; i < len(src); {
		if src[i] == '$' {
			if n, ok := x.dollar(src[i:], lineNo, col, len(cols)+1, emit); ok {
				changed = true
				col += utf8.RuneCount(src[i : i+n])
				i += n
				continue
			}
		}
		_, w := utf8.DecodeRune(src[i:])
		emit(src[i:i+w], col)
		i, col = i+w, col+1
	}
	if changed {
		x.exp.cols[lineNo] = append(cols, col)
	}
}

// dollar expands the $$ or ${...} at the start of s, found at column col of
// the original line and column outCol of the expanded one. It returns the
// number of bytes consumed, or ok=false for a lone $ that stays as is.
func (x *expander) dollar(s []byte, lineNo, col, outCol int, emit func([]byte, int)) (n int, ok bool) {
	if len(s) < 2 {
		return 0, false
	}
	switch s[1] {
	case '$':
		emit([]byte{'$'}, col)
		return 2, true
	case '{':
	default:
		return 0, false
	}
	closing := bytes.IndexByte(s, '}')
	if closing < 0 {
		x.problem(lineNo, col, "unterminated ${: close the reference with }, or write $$ for a literal $")
		emit(s, col) // keep the rest of the line; the file is rejected anyway
		return len(s), true
	}
	ref := string(s[2:closing])
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !validVarName(name) {
		x.problem(lineNo, col, "invalid reference "+quote("${"+ref+"}")+": write ${VAR} or ${VAR:-default}, where VAR is letters, digits and _ not starting with a digit")
		return closing + 1, true
	}
	value, set := x.lookup(name)
	fromEnv := set && (value != "" || !hasDefault)
	switch {
	case fromEnv:
		if strings.ContainsAny(value, "\n\r\u0085\u2028\u2029") {
			x.problem(lineNo, col, "environment variable ${"+name+"} contains a line break, which a config value cannot hold: set it on one line")
			return closing + 1, true
		}
	case hasDefault:
		value = def
	default:
		x.problem(lineNo, col, "environment variable ${"+name+"} is not set: set it, or give a default with ${"+name+":-value}")
		return closing + 1, true
	}
	emit([]byte(value), col)
	if fromEnv {
		x.exp.spans = append(x.exp.spans, envSpan{line: lineNo, start: outCol, end: outCol + utf8.RuneCountInString(value), name: name, value: value})
	}
	return closing + 1, true
}

func (x *expander) problem(line, col int, msg string) {
	x.problems = append(x.problems, Problem{File: x.file, Line: line, Column: col, Message: msg})
}

// validVarName reports whether s is a shell variable name.
func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// startsScalar reports whether a quote at this point opens a quoted scalar:
// at the start of the line, after "[", "{" or ",", or after a blank that
// follows ":", "-" or "?". A quote inside a plain scalar (it's) opens nothing.
func startsScalar(lastSig rune, prevSpace bool) bool {
	switch lastSig {
	case 0, '[', '{', ',':
		return true
	case ':', '-', '?':
		return prevSpace
	}
	return false
}

// blockHeader reports whether a line's content (comment removed) ends with a
// block scalar indicator, such as "key: |", "- >-" or "key: !!str |2".
func blockHeader(content []byte) bool {
	s := strings.TrimRight(string(content), " \t")
	k := strings.LastIndexAny(s, " \t")
	tok := s[k+1:]
	if tok == "" || (tok[0] != '|' && tok[0] != '>') || strings.Trim(tok[1:], "0123456789+-") != "" {
		return false
	}
	s = strings.TrimRight(s[:k+1], " \t")
	for {
		k = strings.LastIndexAny(s, " \t")
		t := s[k+1:]
		if t == "" || (t[0] != '!' && t[0] != '&') {
			break
		}
		s = strings.TrimRight(s[:k+1], " \t")
	}
	s = strings.TrimLeft(s, " ")
	return s == "" || s == "-" || s == "?" || s == "---" ||
		strings.HasSuffix(s, ":") || strings.HasSuffix(s, " -") || strings.HasSuffix(s, " ?")
}
