package config

import (
	"github.com/busline/busline/bus"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// nameRule is the rule for service, consumer group, event and topic names.
const nameRule = `1 to 200 letters, digits, ".", "_" or "-"`

// maxConcurrency bounds Subscription.Concurrency.
const maxConcurrency = bus.MaxConcurrency

// Validate checks c as it is and returns an [*Error] listing every problem, or
// nil. For a Config from [Parse] the problems carry the position of the
// offending value. Parse calls Validate itself; call it again after changing a
// Config in Go.
func (c *Config) Validate() error {
	if ps := c.validate(); len(ps) > 0 {
		return &Error{Problems: sortProblems(ps)}
	}
	return nil
}

// validator collects the problems of a Config, placing each at the position
// its key path was decoded from, when there is one.
type validator struct {
	src      *source
	problems []Problem
}

// at adds a problem about the value at path.
func (v *validator) at(path, msg string) {
	var p pos
	if v.src != nil {
		var ok bool
		if p, ok = v.src.valuePos[path]; !ok {
			p = v.src.keyPos[path]
		}
	}
	v.problems = append(v.problems, v.src.problem(p, v.path(path), msg))
}

// path returns path as problems show it.
func (v *validator) path(path string) string {
	if v.src == nil {
		return path
	}
	return displayPath(v.src.shown, path)
}

// atKey adds a problem about the key of path, a map entry.
func (v *validator) atKey(path, msg string) {
	var p pos
	if v.src != nil {
		p = v.src.keyPos[path]
	}
	v.problems = append(v.problems, v.src.problem(p, v.path(path), msg))
}

// written reports whether the value at path was decoded from the file.
func (v *validator) written(path string) bool {
	if v.src == nil {
		return false
	}
	_, ok := v.src.valuePos[path]
	return ok
}

// tainted reports whether the value at path came from the environment.
func (v *validator) tainted(path string) bool {
	return v.src != nil && len(v.src.taint[path]) > 0
}

// showKey returns display, the key of path, unless it came from the
// environment.
func (v *validator) showKey(path, display string) string {
	if v.src != nil {
		if _, ok := v.src.shown[path]; ok {
			return "a key from " + strings.TrimPrefix(v.path(path), v.path(parent(path))+".")
		}
	}
	return display
}

// show returns display, the value at path, unless it came from the
// environment.
func (v *validator) show(path, display string) string {
	if v.tainted(path) {
		return fromVars(v.src.taint[path])
	}
	return display
}

func (c *Config) validate() []Problem {
	v := &validator{src: c.src}
	switch {
	case c.Service == "":
		v.at("service", "is required: name the service, such as service: billing-api (it is the source of the events it publishes)")
	case !validName(c.Service):
		v.at("service", "must be "+nameRule+", got "+v.show("service", quote(c.Service)))
	}
	if c.ShutdownGrace <= 0 {
		v.at("shutdown_grace", "must be > 0, such as 30s, got "+v.show("shutdown_grace", c.ShutdownGrace.String()))
	}
	if k := c.Transport.Kind; !validKind(k) {
		msg := `must be a transport kind of lower-case letters, digits, "_" and "-", such as "rabbitmq", got ` + v.show("transport.kind", quote(k))
		if lower := strings.ToLower(strings.TrimSpace(k)); validKind(lower) && !v.tainted("transport.kind") {
			msg += " (did you mean " + strconv.Quote(lower) + "?)"
		}
		v.at("transport.kind", msg)
	}
	v.retry(c.Retry, func(field string) (string, bool) { return "retry." + field, true })

	for _, g := range slices.Sorted(maps.Keys(c.Subscriptions)) {
		s, p := c.Subscriptions[g], "subscriptions."+g
		if !validName(g) {
			v.atKey(p, "consumer group name must be "+nameRule+", got "+v.showKey(p, quote(g)))
		}
		inRange := s.Concurrency >= 1 && s.Concurrency <= maxConcurrency
		if !inRange {
			v.at(p+".concurrency", "must be from 1 to "+strconv.Itoa(maxConcurrency)+", got "+v.show(p+".concurrency", strconv.Itoa(s.Concurrency)))
		}
		if s.Timeout < 0 {
			v.at(p+".timeout", "must be >= 0 (0 means no timeout), got "+v.show(p+".timeout", s.Timeout.String()))
		}
		if s.Ordered && inRange && s.Concurrency != 1 {
			v.at(p+".concurrency", "an ordered subscription must have concurrency 1, got "+v.show(p+".concurrency", strconv.Itoa(s.Concurrency))+": set concurrency: 1, or ordered: false")
		}
		if s.Ordered && s.Retry != nil && s.Retry.Delays != nil && len(*s.Retry.Delays) > 0 {
			v.at(p+".retry.delays", "an ordered subscription has no delayed redelivery (it retries in place, then sends to the poison lane): remove delays")
		}
		over := s.Retry.overridden()
		if len(over) == 0 {
			continue
		}
		v.retry(c.effectiveRetry(g), func(field string) (string, bool) {
			f, _, _ := strings.Cut(field, "[")
			if over[f] {
				return p + ".retry." + field, true
			}
			return "retry." + field, false
		})
	}

	for _, event := range slices.Sorted(maps.Keys(c.Topics)) {
		p := "topics." + event
		if !validName(event) {
			v.atKey(p, "event name must be "+nameRule+", got "+v.showKey(p, quote(event)))
		}
		if topic := c.Topics[event]; !validName(topic) {
			v.at(p, "wire topic must be "+nameRule+", got "+v.show(p, quote(topic)))
		}
	}
	return v.problems
}

// retry checks a failure policy. pathOf maps a field of Retry, such as
// "backoff.max" or "delays[1]", to its key path, and reports whether this
// policy sets it: a problem is reported at a field it involves that the policy
// sets, preferably one written in the file, and not at all when it sets none
// of them (a subscription's override is only blamed for what it overrides).
func (v *validator) retry(r Retry, pathOf func(field string) (string, bool)) {
	type alt struct {
		field string
		msg   func(path string) string
	}
	report := func(alts ...alt) {
		// Prefer a field written in the file over one left at its default.
		for _, written := range []bool{true, false} {
			for _, a := range alts {
				if p, own := pathOf(a.field); own && (!written || v.written(p)) {
					v.at(p, a.msg(p))
					return
				}
			}
		}
	}
	// shown formats the value of field for a message.
	shown := func(field, display string) string {
		p, _ := pathOf(field)
		return v.show(p, display)
	}
	b := r.Backoff
	if r.Attempts < 1 {
		report(alt{"attempts", func(string) string {
			return "must be >= 1 (1 means no immediate retry), got " + shown("attempts", strconv.Itoa(r.Attempts))
		}})
	}
	if b.Initial <= 0 {
		report(alt{"backoff.initial", func(string) string {
			return "must be > 0, such as 100ms, got " + shown("backoff.initial", b.Initial.String())
		}})
	} else if b.Max < b.Initial {
		report(
			alt{"backoff.max", func(string) string {
				return "must be >= backoff.initial (" + shown("backoff.initial", b.Initial.String()) + "), got " + shown("backoff.max", b.Max.String())
			}},
			alt{"backoff.initial", func(string) string {
				return "must be <= backoff.max (" + shown("backoff.max", b.Max.String()) + "), got " + shown("backoff.initial", b.Initial.String())
			}},
		)
	}
	if !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0) {
		report(alt{"backoff.multiplier", func(string) string {
			return "must be a number >= 1, got " + shown("backoff.multiplier", formatFloat(b.Multiplier))
		}})
	}
	if !(b.Jitter >= 0 && b.Jitter <= 1) {
		report(alt{"backoff.jitter", func(string) string {
			return "must be from 0 to 1 (0 means no jitter), got " + shown("backoff.jitter", formatFloat(b.Jitter))
		}})
	}
	if b.MaxElapsed < 0 {
		report(alt{"backoff.max_elapsed", func(string) string {
			return "must be >= 0 (0 means no limit), got " + shown("backoff.max_elapsed", b.MaxElapsed.String())
		}})
	}
	for i, d := range r.Delays {
		if d <= 0 {
			field := "delays[" + strconv.Itoa(i) + "]"
			report(alt{field, func(string) string {
				return "must be > 0, got " + shown(field, d.String()) + " (write delays: [] for no delayed redelivery)"
			}})
		}
	}
}

// effectiveRetry is the global policy with group's overrides applied, without
// filling defaults, so that Validate sees explicit zeros.
func (c *Config) effectiveRetry(group string) Retry {
	r := c.Retry
	r.Delays = slices.Clone(r.Delays)
	if o := c.Subscriptions[group].Retry; o != nil {
		o.apply(&r)
	}
	return r
}

// validName reports whether s follows [nameRule].
func validName(s string) bool {
	if len(s) == 0 || len(s) > 200 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// parent returns the key path that holds path.
func parent(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// sortProblems orders problems by position, those without one first, keeping
// the order of problems at the same position.
func sortProblems(ps []Problem) []Problem {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return ps
}
