package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// listFlag is a repeatable flag that also splits its value on commas.
type listFlag []string

var _ pflag.Value = (*listFlag)(nil)

func (l *listFlag) String() string { return strings.Join(*l, ",") }

// Type names the value in --help.
func (l *listFlag) Type() string { return "ids" }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// ageFlag is a duration that also accepts days, such as "7d" or "1d12h".
type ageFlag time.Duration

var _ pflag.Value = (*ageFlag)(nil)

func (a *ageFlag) String() string {
	if *a == 0 {
		return ""
	}
	return time.Duration(*a).String()
}

// Type names the value in --help.
func (a *ageFlag) Type() string { return "age" }

func (a *ageFlag) Set(v string) error {
	d, err := parseAge(v)
	if err != nil {
		return err
	}
	*a = ageFlag(d)
	return nil
}

// parseAge parses a Go duration with an optional leading "<n>d" for days.
func parseAge(v string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(v, 'd'); i > 0 {
		n, err := strconv.Atoi(v[:i])
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 90m, 12h or 7d", v)
		}
		days = time.Duration(n) * 24 * time.Hour
		v = v[i+1:]
		if v == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 90m, 12h or 7d", v)
	}
	return days + d, nil
}

// noArgs refuses positional arguments: exit code 2.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q", args[0])
	}
	return nil
}

// oneArg wants exactly one positional argument, named what ("FILE").
func oneArg(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError("expected one %s, got %d arguments", what, len(args))
		}
		return nil
	}
}
