package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/middleware"
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
	v.retry(v.policy(c.Retry), func(field string) (string, bool) { return "retry." + field, true })

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
		if s.Retry == nil {
			continue
		}
		// A group's policy is blamed only for the fields it sets itself:
		// those written in its retry: section or, for a Config built in Go,
		// those that differ from the global policy.
		mine := v.policy(*s.Retry)
		global, values := policyValues(v.policy(c.Retry)), policyValues(mine)
		own := func(field string) bool {
			if v.src != nil {
				return v.written(p + ".retry." + field)
			}
			return values[field] != global[field]
		}
		if s.Ordered && len(mine.Delays) > 0 && own("delays") {
			v.at(p+".retry.delays", "an ordered subscription has no delayed redelivery (it retries in place, then sends to the poison lane): remove delays")
		}
		v.retry(mine, func(field string) (string, bool) {
			f, _, _ := strings.Cut(field, "[")
			if own(f) || own(field) {
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

// retry checks a failure policy by middleware's rules. pathOf maps a field
// of Retry, such as "backoff.max" or "delays[1]", to its key path, and
// reports whether this policy sets it: a problem is reported at a field it
// involves that the policy sets, preferably one written in the file, and
// not at all when it sets none of them (a subscription is only blamed for
// what it sets itself).
func (v *validator) retry(r Retry, pathOf func(field string) (string, bool)) {
	show := func(field, value string) string {
		p, _ := pathOf(field)
		return v.show(p, value)
	}
	for _, err := range slices.Concat(unjoin(r.RetryPolicy.Validate()), unjoin(middleware.ValidateDelays(r.Delays))) {
		var pe *middleware.PolicyError
		if !errors.As(err, &pe) {
			continue
		}
		alts := []*middleware.PolicyError{pe}
		if pe.Alt != nil {
			alts = append(alts, pe.Alt)
		}
		v.reportPolicy(alts, pathOf, show)
	}
}

// policy returns the policy r means, as Validate checks it: a Config built
// in Go has its zero fields filled by the policy's defaults, as BusConfig
// and the bus fill them; one from Parse is checked as it is, since Parse
// filled the defaults before decoding and a zero left is one the file wrote.
func (v *validator) policy(r Retry) Retry {
	r = r.clone()
	if v.src == nil {
		r.setDefaults()
	}
	return r
}

// reportPolicy reports one policy problem at the first of its alternative
// fields the policy sets, preferring one written in the file.
func (v *validator) reportPolicy(alts []*middleware.PolicyError, pathOf func(string) (string, bool), show func(field, value string) string) {
	for _, written := range []bool{true, false} {
		for _, a := range alts {
			if p, own := pathOf(a.Field); own && (!written || v.written(p)) {
				v.at(p, a.Message(show))
				return
			}
		}
	}
}

// unjoin returns the errors errors.Join joined in err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// policyValues formats each field of r by its key path, to tell which
// fields of a group's policy differ from the global one.
func policyValues(r Retry) map[string]string {
	b := r.Backoff
	m := map[string]string{
		"attempts":            strconv.Itoa(r.Attempts),
		"backoff.initial":     b.Initial.String(),
		"backoff.max":         b.Max.String(),
		"backoff.multiplier":  formatFloat(b.Multiplier),
		"backoff.jitter":      formatFloat(b.Jitter),
		"backoff.max_elapsed": b.MaxElapsed.String(),
		"delays":              fmt.Sprint(r.Delays == nil, r.Delays),
	}
	for i, d := range r.Delays {
		m["delays["+strconv.Itoa(i)+"]"] = d.String()
	}
	return m
}

// effectiveRetry is the group's own policy or the global one, without
// filling defaults, so that Validate sees explicit zeros.
func (c *Config) effectiveRetry(group string) Retry {
	if r := c.Subscriptions[group].Retry; r != nil {
		return r.clone()
	}
	return c.Retry.clone()
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
