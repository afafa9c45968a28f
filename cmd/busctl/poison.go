package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
	"github.com/busline/busline/wire"
)

// laneFlags are the flags of the poison commands.
type laneFlags struct {
	conn      connFlags
	group     string
	topic     string
	event     string
	ids       listFlag
	all       bool
	olderThan ageFlag
	asJSON    bool
}

const laneSynopsis = "--config FILE --group G (--topic T | --event NAME)"

// register declares the lane flags on cmd; selectors adds --all and
// --older-than.
func (f *laneFlags) register(cmd *cobra.Command, selectors bool) {
	fs := cmd.Flags()
	f.conn.register(cmd, fs)
	fs.StringVar(&f.group, "group", "", "the consumer `group` whose poison lane to work on (required)")
	fs.StringVar(&f.topic, "topic", "", "the `topic` the group consumes (the event's wire topic)")
	fs.StringVar(&f.event, "event", "", "the event `name`; its topic is the config's topics: mapping, or the name")
	fs.Var(&f.ids, "id", "select the message with this `ID` (ce_id); repeat or separate with commas")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON for scripts instead of a table")
	if selectors {
		fs.BoolVar(&f.all, "all", false, "select every message in the lane")
		fs.Var(&f.olderThan, "older-than", "select messages whose last failure is older than `D`, such as 90m, 12h or 7d")
	}
	_ = cmd.RegisterFlagCompletionFunc("group", f.conn.completeFromConfig(configGroups))
	_ = cmd.RegisterFlagCompletionFunc("event", f.conn.completeFromConfig(configEvents))
}

func newPoisonCmd(c *cli) *cobra.Command {
	return newGroupCmd("poison", "list, show, replay and purge a group's poison lane",
		newPoisonListCmd(c), newPoisonShowCmd(c), newSweepCmd(c, replayKind), newSweepCmd(c, purgeKind))
}

// lane is an opened poison lane.
type lane struct {
	cfg       *config.Config
	transport transports.Transport
	poison    *bus.PoisonLane
	topic     string // the group's topic, not the lane's
	group     string
}

// open checks the lane flags, connects and returns the lane.
func (f *laneFlags) open(ctx context.Context, c *cli) (*lane, error) {
	if f.group == "" {
		return nil, usageError("--group G is required: the consumer group whose poison lane to work on")
	}
	if f.topic == "" && f.event == "" {
		return nil, usageError("pass --topic T or --event NAME to select the poison lane: the topic the group consumes, or the event whose topic it is")
	}
	if f.topic != "" && f.event != "" {
		return nil, usageError("pass --topic T or --event NAME, not both")
	}
	for _, n := range [][2]string{{"group", f.group}, {"topic", f.topic}, {"event", f.event}} {
		if n[1] != "" {
			if err := bus.ValidateName(n[0], n[1]); err != nil {
				return nil, usageError("--%s: %v", n[0], err)
			}
		}
	}
	cfg, t, err := f.conn.open(ctx, c)
	if err != nil {
		return nil, err
	}
	topic := f.topic
	if topic == "" {
		topic = topicOf(cfg.Topics, f.event)
	}
	pl, err := bus.NewPoisonLane(t, topic, f.group)
	if err != nil {
		_ = t.Close()
		return nil, usageError("%v", err)
	}
	if err := f.checkLane(ctx, c, cfg, t, topic); err != nil {
		_ = t.Close()
		return nil, err
	}
	return &lane{cfg: cfg, transport: t, poison: pl, topic: topic, group: f.group}, nil
}

// list returns the lane's messages, leaving them there. busctl's memory
// transport is a private, empty bus: its lanes are empty, and reading them
// would only say the group has none.
func (l *lane) list(ctx context.Context) ([]bus.PoisonMessage, error) {
	if l.cfg.Transport.Kind == memory.Kind {
		return nil, nil
	}
	return l.poison.List(ctx)
}

// checkLane makes sure the lane exists before it is read, since reading a
// lane provisions its group: a misspelt --group or --topic must not leave a
// queue, stream or topic behind. The memory transport is private to busctl,
// so there is nothing there to check or to leave.
func (f *laneFlags) checkLane(ctx context.Context, c *cli, cfg *config.Config, t transports.Transport, topic string) error {
	if cfg.Transport.Kind == memory.Kind {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.conn.timeout)
	defer cancel()
	gi, release, err := inspectorFor(ctx, t)
	if err != nil {
		return unreachable(cfg.Transport.Kind, &f.conn, err)
	}
	defer release()
	if gi == nil {
		fmt.Fprintf(c.stderr, "busctl: note: busctl cannot check on transport %s that lane %s exists without creating it: check --group and --topic\n",
			cfg.Transport.Kind, wire.PoisonTopic(topic, f.group))
		return nil
	}
	return checkLane(ctx, gi, topic, f.group, configGroups(cfg))
}

// hint explains an empty lane or selection when the group is not in the
// config, the likeliest cause being a misspelt name.
func (l *lane) hint(c *cli, path string) {
	if _, ok := l.cfg.Subscriptions[l.group]; ok || len(l.cfg.Subscriptions) == 0 {
		return
	}
	groups := make([]string, 0, len(l.cfg.Subscriptions))
	for g := range l.cfg.Subscriptions {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	fmt.Fprintf(c.stderr, "busctl: note: group %s is not under subscriptions: in %s (%s); check --group and --topic\n", l.group, path, strings.Join(groups, ", "))
}

// selects reports whether m is selected by --id and --older-than.
func (f *laneFlags) selects(m bus.PoisonMessage, now time.Time) bool {
	if len(f.ids) > 0 && !contains(f.ids, m.ID) {
		return false
	}
	if f.olderThan > 0 {
		at := failedAt(m)
		if at.IsZero() || now.Sub(at) < time.Duration(f.olderThan) {
			return false
		}
	}
	return true
}

// failedAt is when m entered the lane: its last failure, else its first,
// else its publish time.
func failedAt(m bus.PoisonMessage) time.Time {
	switch {
	case !m.Failure.LastFailure.IsZero():
		return m.Failure.LastFailure
	case !m.Failure.FirstFailure.IsZero():
		return m.Failure.FirstFailure
	}
	t, _ := time.Parse(time.RFC3339Nano, m.Metadata.Get(bus.MetaTime))
	return t
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func newPoisonListCmd(c *cli) *cobra.Command {
	var f laneFlags
	cmd := &cobra.Command{
		Use:   "list " + laneSynopsis + " [--id ID ...] [--older-than D] [--json]",
		Short: "list a group's poison lane: id, event, error, attempts, failure times",
		Long: `Lists the group's poison lane, oldest first: each message's id, event,
failure reason, attempts, first and last failure, and error. The messages
stay in the lane. --id and --older-than narrow the list.`,
		Example: `  busctl poison list --config shop.yaml --group billing --event orders.placed
  busctl poison list --config shop.yaml --group billing --topic shop.orders --older-than 7d --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPoisonList(cmd.Context(), c, &f) },
	}
	f.register(cmd, true)
	return cmd
}

func runPoisonList(ctx context.Context, c *cli, f *laneFlags) error {
	l, err := f.open(ctx, c)
	if err != nil {
		return err
	}
	defer l.transport.Close()
	msgs, err := l.list(ctx)
	if err != nil {
		return fmt.Errorf("list: %w (nothing was changed)", err)
	}
	now := time.Now()
	var shown []bus.PoisonMessage
	for _, m := range msgs {
		if f.selects(m, now) {
			shown = append(shown, m)
		}
	}
	if f.asJSON {
		entries := make([]laneEntry, len(shown))
		for i, m := range shown {
			entries[i] = newLaneEntry(m)
		}
		return writeJSON(c.stdout, struct {
			Lane     string      `json:"lane"`
			Topic    string      `json:"topic"`
			Group    string      `json:"group"`
			Total    int         `json:"total"`
			Messages []laneEntry `json:"messages"`
		}{l.poison.Topic(), l.topic, l.group, len(msgs), entries})
	}
	if len(msgs) == 0 {
		fmt.Fprintf(c.stdout, "lane %s is empty\n", l.poison.Topic())
		l.hint(c, f.conn.config)
		return nil
	}
	fmt.Fprintf(c.stdout, "lane %s: %s", l.poison.Topic(), plural(len(msgs), "message"))
	if len(shown) != len(msgs) {
		fmt.Fprintf(c.stdout, ", %d selected", len(shown))
	}
	fmt.Fprintln(c.stdout)
	writeTable(c.stdout, shown)
	return nil
}

func newPoisonShowCmd(c *cli) *cobra.Command {
	var f laneFlags
	cmd := &cobra.Command{
		Use:   "show " + laneSynopsis + " --id ID [--json]",
		Short: "print one poison message whole: failure record, metadata, payload",
		Long: `Prints one poison message whole: its failure record, every metadata entry
and its payload. The message stays in the lane. The id may also be given as
the only argument.`,
		Example: "  busctl poison show --config shop.yaml --group billing --event orders.placed --id 01a21d2a-0fab-7ae1-8f1c-f3aa79e4c3f9",
		RunE: func(cmd *cobra.Command, args []string) error {
			f.ids = append(f.ids, args...)
			return runPoisonShow(cmd.Context(), c, &f)
		},
	}
	f.register(cmd, false)
	return cmd
}

func runPoisonShow(ctx context.Context, c *cli, f *laneFlags) error {
	if len(f.ids) != 1 {
		return usageError("poison show prints one message: give exactly one --id ID (busctl poison list shows the ids)")
	}
	l, err := f.open(ctx, c)
	if err != nil {
		return err
	}
	defer l.transport.Close()
	msgs, err := l.list(ctx)
	if err != nil {
		return fmt.Errorf("read the lane: %w (nothing was changed)", err)
	}
	for _, m := range msgs {
		if m.ID != f.ids[0] {
			continue
		}
		if f.asJSON {
			return writeJSON(c.stdout, struct {
				laneEntry
				Metadata map[string]string `json:"metadata"`
				payloadJSON
			}{newLaneEntry(m), m.Metadata, newPayloadJSON(m.Payload)})
		}
		writeDetail(c.stdout, l.poison.Topic(), m)
		return nil
	}
	l.hint(c, f.conn.config)
	return &exitError{code: exitNoMatch, err: fmt.Errorf("no message %s in lane %s (%d messages there; busctl poison list shows them)", f.ids[0], l.poison.Topic(), len(msgs))}
}

// laneEntry is a poison message in JSON output.
type laneEntry struct {
	ID           string `json:"id"`
	Event        string `json:"event"`
	Reason       string `json:"reason,omitempty"`
	Error        string `json:"error,omitempty"`
	ErrorType    string `json:"error_type,omitempty"`
	Attempts     int    `json:"attempts"`
	Replays      int    `json:"replays"`
	FirstFailure string `json:"first_failure,omitempty"`
	LastFailure  string `json:"last_failure,omitempty"`
	Topic        string `json:"topic,omitempty"`
	Group        string `json:"group,omitempty"`
	Handler      string `json:"handler,omitempty"`
	Malformed    string `json:"malformed,omitempty"`
}

func newLaneEntry(m bus.PoisonMessage) laneEntry {
	e := laneEntry{
		ID: m.ID, Event: m.Event, Reason: m.Failure.Reason, Error: m.Failure.Error, ErrorType: m.Failure.ErrorType,
		Attempts: m.Failure.Attempts, Replays: m.Failure.Replays,
		FirstFailure: jsonTime(m.Failure.FirstFailure), LastFailure: jsonTime(m.Failure.LastFailure),
		Topic: m.Failure.Topic, Group: m.Failure.Group, Handler: m.Failure.Handler,
	}
	if m.FailureErr != nil {
		e.Malformed = "malformed failure record: " + m.FailureErr.Error()
	}
	return e
}

func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func tableTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// writeTable prints poison messages as a table for people.
func writeTable(w io.Writer, msgs []bus.PoisonMessage) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tREASON\tATTEMPTS\tFIRST FAILURE\tLAST FAILURE\tERROR")
	for _, m := range msgs {
		errText := m.Failure.Error
		if m.FailureErr != nil {
			errText = "(malformed failure record) " + errText
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.ID, orDash(m.Event), orDash(m.Failure.Reason), m.Failure.Attempts,
			tableTime(m.Failure.FirstFailure), tableTime(m.Failure.LastFailure), orDash(shorten(errText, 60)))
	}
	_ = tw.Flush()
}

// writeDetail prints one poison message whole, for people.
func writeDetail(w io.Writer, laneTopic string, m bus.PoisonMessage) {
	f := m.Failure
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("id", m.ID)
	row("event", orDash(m.Event))
	row("lane", laneTopic)
	row("reason", orDash(f.Reason))
	row("error", orDash(strings.ReplaceAll(f.Error, "\n", "\n\t")))
	row("error type", orDash(f.ErrorType))
	row("attempts", f.Attempts)
	row("replays", f.Replays)
	row("group", orDash(f.Group))
	row("topic", orDash(f.Topic))
	row("handler", orDash(f.Handler))
	if f.Position != "" {
		row("position", f.Position)
	}
	row("first failure", tableTime(f.FirstFailure))
	row("last failure", tableTime(f.LastFailure))
	if m.FailureErr != nil {
		row("malformed", "the failure record is malformed: "+m.FailureErr.Error())
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "metadata:")
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, m.Metadata[k])
	}
	fmt.Fprintf(w, "payload (%d bytes):\n", len(m.Payload))
	for _, line := range strings.Split(strings.TrimRight(payloadText(m.Payload), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// retryLane is where replay puts messages back.
func (l *lane) retryLane() string { return wire.RetryTopic(l.topic, l.group) }
