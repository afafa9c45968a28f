package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/busline/busline/bus"
)

// sweepKind is replay or purge.
type sweepKind struct {
	name    string // "replay"
	done    string // "replayed"
	short   string // the line in busctl poison --help
	explain string // the --help text
	example string
	rate    float64 // --rate's default
}

var (
	replayKind = sweepKind{"replay", "replayed", "move poison messages back into the group's retry lane (that group only)", `
Moves the selected poison messages to the group's retry lane
(<topic>.<group>.retry), due at once, so the group's running consumers handle
them again; other groups of the topic do not see them. Messages keep their
payload, metadata and failure record (busline_replays counts replays).
Select with --all, --id or --older-than (both narrow together). busctl first
lists the lane, then moves exactly the messages selected then, with a
progress bar, at most --rate per second.`,
		`  busctl poison replay --config shop.yaml --group billing --event orders.placed --all --rate 10
  busctl poison replay --config shop.yaml --group billing --event orders.placed --id ID1,ID2`, 100}
	purgeKind = sweepKind{"purge", "purged", "delete poison messages, after confirmation unless --yes", `
Deletes the selected poison messages for good, after listing them and asking
for confirmation (type "yes"), unless --yes is given. Select with --all, --id
or --older-than (both narrow together). busctl first lists the lane, then
deletes exactly the messages selected then.`,
		`  busctl poison purge --config shop.yaml --group billing --event orders.placed --older-than 30d
  busctl poison purge --config shop.yaml --group billing --event orders.placed --all --yes`, 0}
)

// sweepResult is the JSON output of replay and purge.
type sweepResult struct {
	Action   string   `json:"action"`
	Lane     string   `json:"lane"`
	To       string   `json:"to,omitempty"`
	Selected int      `json:"selected"`
	Done     int      `json:"done"`
	Missing  []string `json:"missing_ids,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// sweepFlags are the flags of replay and purge.
type sweepFlags struct {
	laneFlags
	rate  float64
	yes   bool
	quiet bool
}

func newSweepCmd(c *cli, k sweepKind) *cobra.Command {
	var f sweepFlags
	use := k.name + " " + laneSynopsis + " (--all | --id ID ... | --older-than D)"
	if k.name == "purge" {
		use += " [--yes]"
	} else {
		use += " [--rate N]"
	}
	cmd := &cobra.Command{
		Use:     use + " [--json]",
		Short:   k.short,
		Long:    strings.TrimSpace(k.explain),
		Example: k.example,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runSweep(cmd.Context(), c, &f, k) },
	}
	f.register(cmd, true)
	fs := cmd.Flags()
	fs.Float64Var(&f.rate, "rate", k.rate, "at most `N` messages per second (0: no limit)")
	if k.name == "purge" {
		fs.BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	}
	fs.BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
	return cmd
}

func runSweep(ctx context.Context, c *cli, sf *sweepFlags, k sweepKind) error {
	f := &sf.laneFlags
	switch {
	case f.all && (len(f.ids) > 0 || f.olderThan > 0):
		return usageError("--all selects every message: leave out --id and --older-than, or --all")
	case !f.all && len(f.ids) == 0 && f.olderThan == 0:
		return usageError("select the messages to %s with --all, --id ID or --older-than D", k.name)
	case sf.rate < 0:
		return usageError("--rate must be >= 0")
	}
	l, err := f.open(ctx, c)
	if err != nil {
		return err
	}
	defer l.transport.Close()

	msgs, err := l.list(ctx)
	if err != nil {
		return fmt.Errorf("read the lane: %w (nothing was %s)", err, k.done)
	}
	now := time.Now()
	want := map[string]int{} // id -> how many messages with it to act on
	var selected []bus.PoisonMessage
	for _, m := range msgs {
		if f.selects(m, now) {
			selected = append(selected, m)
			want[m.ID]++
		}
	}
	var missing []string
	for _, id := range f.ids {
		if want[id] == 0 {
			missing = append(missing, id)
		}
	}
	res := sweepResult{Action: k.name, Lane: l.poison.Topic(), Selected: len(selected), Missing: missing}
	if k.name == "replay" {
		res.To = l.retryLane()
	}
	if len(selected) == 0 {
		l.hint(c, f.conn.config)
		err := fmt.Errorf("no message in lane %s (%d there) matches the selection: nothing was %s", l.poison.Topic(), len(msgs), k.done)
		if len(missing) > 0 {
			err = fmt.Errorf("%w; not in the lane: %s", err, strings.Join(missing, ", "))
		}
		if f.asJSON {
			res.Error = err.Error()
			_ = writeJSON(c.stdout, res)
		}
		return &exitError{code: exitNoMatch, err: err}
	}
	if len(missing) > 0 {
		fmt.Fprintf(c.stderr, "busctl: not in lane %s, skipped: %s\n", l.poison.Topic(), strings.Join(missing, ", "))
	}
	if k.name == "purge" && !sf.yes {
		if !confirm(c, l, selected) {
			return fmt.Errorf("not confirmed: nothing was purged (pass --yes to skip the question)")
		}
	}

	bar := newProgress(c.stderr, k.done, len(selected), sf.quiet || f.asJSON)
	pace := newPacer(sf.rate)
	match := func(m bus.PoisonMessage) bool {
		if want[m.ID] == 0 || pace.Wait(ctx) != nil {
			return false
		}
		want[m.ID]--
		bar.Add(1)
		return true
	}
	var n int
	if k.name == "replay" {
		n, err = l.poison.Replay(ctx, match)
	} else {
		n, err = l.poison.Purge(ctx, match)
	}
	bar.Finish()
	res.Done = n
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		err = fmt.Errorf("%s %d of %d selected messages, then stopped: %w; the other %d are still in lane %s: run the command again to go on",
			k.done, n, len(selected), err, len(selected)-n, l.poison.Topic())
		res.Error = err.Error()
	} else if n < len(selected) {
		fmt.Fprintf(c.stderr, "busctl: %d selected messages were no longer in the lane (another sweep or consumer took them)\n", len(selected)-n)
	}
	if f.asJSON {
		_ = writeJSON(c.stdout, res)
	} else if err == nil {
		fmt.Fprintf(c.stdout, "%s %s from lane %s", k.done, plural(n, "message"), l.poison.Topic())
		if res.To != "" {
			fmt.Fprintf(c.stdout, " to %s (group %s only)", res.To, l.group)
		}
		fmt.Fprintln(c.stdout)
	}
	switch {
	case err != nil:
		return err
	case len(missing) > 0:
		return &exitError{code: exitNoMatch, err: fmt.Errorf("not in the lane, nothing done for: %s", strings.Join(missing, ", "))}
	}
	return nil
}

// confirm lists what purge is about to delete and asks for "yes".
func confirm(c *cli, l *lane, selected []bus.PoisonMessage) bool {
	fmt.Fprintf(c.stderr, "About to delete %s from lane %s for good:\n", plural(len(selected), "message"), l.poison.Topic())
	writeTable(c.stderr, selected)
	fmt.Fprint(c.stderr, "Type yes to delete them: ")
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	if !isTerminal(c.stdin) {
		fmt.Fprintln(c.stderr, answer) // echo a piped answer
	}
	return answer == "yes" || answer == "y"
}

// plural is "1 message" or "n messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
