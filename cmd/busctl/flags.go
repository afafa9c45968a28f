package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// newFlags returns a flag set for cmd whose --help prints usage (the
// command's synopsis, then text, then its flags) to stdout.
func newFlags(c *cli, name, synopsis, text string) *flag.FlagSet {
	fs := flag.NewFlagSet("busctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := c.stdout
		fmt.Fprintf(w, "Usage: busctl %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(text))
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(w, strings.ReplaceAll("\n"+b.String(), "\n  -", "\n  --")[1:])
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("tail TOPIC --group g"), and returns the positional arguments. --help
// prints usage and yields flag.ErrHelp wrapped with exit code 0.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) { // fs.Usage has printed the usage
				return nil, &exitError{code: exitOK, err: errQuiet}
			}
			return nil, &exitError{code: exitUsage, err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// listFlag is a repeatable flag that also splits its value on commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

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

func (a *ageFlag) String() string {
	if *a == 0 {
		return ""
	}
	return time.Duration(*a).String()
}

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
