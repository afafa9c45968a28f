package config

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is matched by every [*Error]: errors.Is(err, ErrInvalid) reports
// whether a configuration was rejected, as opposed to not read at all.
var ErrInvalid = errors.New("invalid config")

// Problem is one thing wrong with a configuration, located in its file.
type Problem struct {
	// File is the file name given to [Parse] or [Load]; empty when unknown.
	File string

	// Line and Column locate the offending YAML node, counting from 1; zero
	// when the problem has no place in the file (a required key is absent).
	Line, Column int

	// Path is the dotted key path of the offending value, such as
	// subscriptions.billing.timeout or retry.delays[1]; empty for the file as a
	// whole.
	Path string

	// Message says what is wrong and how to fix it. It never contains a value
	// that came from an environment variable.
	Message string
}

// String formats p as "file:line:col: path: message", leaving out the parts
// that are empty or zero.
func (p Problem) String() string {
	var b strings.Builder
	loc := p.File
	if p.Line > 0 {
		if loc != "" {
			loc += ":"
		}
		loc += strconv.Itoa(p.Line)
		if p.Column > 0 {
			loc += ":" + strconv.Itoa(p.Column)
		}
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error reports every problem found in a configuration at once. It matches
// [ErrInvalid] with errors.Is.
type Error struct {
	// Problems lists the problems in the order of the file, those without a
	// position first.
	Problems []Problem
}

// Error formats the problems, one per line after a count when there are
// several.
func (e *Error) Error() string {
	switch len(e.Problems) {
	case 0:
		return "config: " + ErrInvalid.Error()
	case 1:
		return "config: " + e.Problems[0].String()
	}
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(strconv.Itoa(len(e.Problems)))
	b.WriteString(" problems:")
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns [ErrInvalid].
func (e *Error) Unwrap() error { return ErrInvalid }
