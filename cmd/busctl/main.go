package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	_ "github.com/busline/busline/transports/all" // every transport, chosen by transport.kind
)

// Exit codes; the package documentation explains each.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitNoMatch     = 3
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is one invocation's standard streams.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// exitError is an error with the exit code it ends busctl with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a mistake on the command line: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// command is one busctl subcommand.
type command struct {
	name    string // "poison list"
	summary string // one line for busctl --help
	run     func(ctx context.Context, c *cli, args []string) error
}

var commands = []command{
	{"config validate", "check a configuration file as strictly as the library does", runConfigValidate},
	{"config show", "print the effective configuration, defaults filled, secrets redacted", runConfigShow},
	{"publish", "publish one event as CloudEvents, as a typed publisher would", runPublish},
	{"tail", "print a topic's messages as they arrive, in an ephemeral group of its own", runTail},
	{"poison list", "list a group's poison lane: id, event, error, attempts, failure times", runPoisonList},
	{"poison show", "print one poison message whole: failure record, metadata, payload", runPoisonShow},
	{"poison replay", "move poison messages back into the group's retry lane (that group only)", runPoisonReplay},
	{"poison purge", "delete poison messages, after confirmation unless --yes", runPoisonPurge},
}

// run executes busctl with args and returns its exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		c.usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, rest, ok := lookup(args)
	if !ok {
		fmt.Fprintf(stderr, "busctl: unknown command %q\n", strings.Join(args[:min(2, len(args))], " "))
		c.usage(stderr)
		return exitUsage
	}
	err := cmd.run(ctx, c, rest)
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if ctx.Err() != nil {
		code = exitInterrupted
	}
	if !errors.Is(err, errQuiet) {
		fmt.Fprintf(stderr, "busctl %s: %v\n", cmd.name, err)
	}
	if code == exitUsage && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "run 'busctl %s --help' for usage\n", cmd.name)
	}
	return code
}

// errQuiet marks an error whose message was already printed.
var errQuiet = errors.New("already reported")

// lookup finds the command named by the first one or two words of args.
func lookup(args []string) (command, []string, bool) {
	for _, cmd := range commands {
		words := strings.Fields(cmd.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.name {
			return cmd, args[len(words):], true
		}
	}
	// "busctl poison" or "busctl config" alone, or with --help.
	if len(args) >= 1 && (args[0] == "poison" || args[0] == "config") {
		return command{name: args[0], run: func(_ context.Context, c *cli, rest []string) error {
			c.usage(c.stdout)
			if len(rest) > 0 && isHelp(rest[0]) {
				return nil
			}
			return usageError("%s needs a subcommand", args[0])
		}}, args[1:], true
	}
	return command{}, nil, false
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `busctl is the operator's command line for busline: check a configuration,
publish and tail events, and work the poison lanes, on any transport.

Usage:
  busctl <command> [flags] [arguments]

Commands:
`)
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Run 'busctl <command> --help' for a command's flags.

Exit codes: 0 done; 1 failed (invalid config, broker unreachable, stopped
part-way: the message says how far it got); 2 bad command line; 3 no message
matched (poison show, replay, purge); 130 interrupted.
`)
}
