package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

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

// errQuiet marks an error whose message was already printed.
var errQuiet = errors.New("already reported")

const rootHelp = `busctl is the operator's command line for busline: check a configuration,
publish and tail events, and work the poison lanes, on any transport.

Exit codes: 0 done; 1 failed (invalid config, broker unreachable, stopped
part-way: the message says how far it got); 2 bad command line; 3 no message
matched (poison show, replay, purge); 130 interrupted.`

// newRootCmd returns the busctl command tree, writing to c's streams.
func newRootCmd(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "busctl",
		Short: "the operator's command line for busline",
		Long:  rootHelp,
		Args:  unknownCommand,
		// busctl alone prints the help and exits 2, as a bad command line.
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Help()
			return &exitError{code: exitUsage, err: errQuiet}
		},
		SilenceErrors: true, // run prints errors, with the command's name
		SilenceUsage:  true,
	}
	// A command that groups subcommands (busctl, config, poison) runs only to
	// refuse a missing or unknown one: its usage shows just the subcommands.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	// Every flag error (unknown flag, bad value) is a bad command line.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(newConfigCmd(c), newPublishCmd(c), newTailCmd(c), newPoisonCmd(c))
	return root
}

// newGroupCmd returns a command that only groups subcommands ("config",
// "poison"): alone it prints its help and exits 2.
func newGroupCmd(name, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Help()
			names := make([]string, 0, len(subs))
			for _, sub := range subs {
				names = append(names, sub.Name())
			}
			return usageError("a subcommand is needed: %s", strings.Join(names, ", "))
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// unknownCommand refuses the arguments of a command that takes none but
// subcommands, suggesting the subcommands spelt like the first.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if cmd.HasParent() {
		msg += fmt.Sprintf(" for %q", cmd.CommandPath())
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default for its own suggestions
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += " (did you mean " + strings.Join(s, ", ") + "?)"
	}
	return &exitError{code: exitUsage, err: errors.New(msg)}
}

// run executes busctl with args and returns its exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(c)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case ctx.Err() != nil:
		code = exitInterrupted
	}
	name := "busctl"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	if !errors.Is(err, errQuiet) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	if code == exitUsage && !errors.Is(err, errQuiet) {
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", name)
	}
	return code
}
