package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/spf13/cobra"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
)

// tailFlags are the flags of busctl tail.
type tailFlags struct {
	conn    connFlags
	group   string
	count   int
	history bool
	create  bool
	asJSON  bool
}

func newTailCmd(c *cli) *cobra.Command {
	var f tailFlags
	cmd := &cobra.Command{
		Use:   "tail --config FILE TOPIC [--group G] [--count N] [--history] [--create] [--json]",
		Short: "print a topic's messages as they arrive, in an ephemeral group of its own",
		Long: `Prints the messages published on TOPIC as they arrive: metadata, then payload.
TOPIC may also be an event name that the config's topics: maps to its topic.
tail consumes in a consumer group of its own, busctl-tail-<random>, so the
services' groups keep every message; it deletes that group when it stops
(Ctrl-C, --count reached, or an error). On Redis and Kafka a new group starts
at the beginning of the topic: tail skips messages published before it started
unless --history is given. A topic that does not exist on the broker (nothing
was ever published to it or consumed from it: a misspelt name, most likely)
is an error, and nothing is created, unless --create is given.`,
		Example: `  busctl tail --config shop.yaml orders.placed --count 1
  busctl tail --config shop.yaml shop.orders --json --history`,
		Args:              oneArg("TOPIC"),
		ValidArgsFunction: f.conn.completeFromConfig(configEvents),
		RunE:              func(cmd *cobra.Command, args []string) error { return runTail(cmd.Context(), c, &f, args[0]) },
	}
	fs := cmd.Flags()
	f.conn.register(cmd, fs)
	fs.StringVar(&f.group, "group", "", "consume as group `G` and keep it on exit, instead of an ephemeral group (never a group of the config's subscriptions)")
	fs.IntVar(&f.count, "count", 0, "stop after `N` messages (0: until interrupted)")
	fs.BoolVar(&f.history, "history", false, "also print messages published before tail started (Redis and Kafka keep them)")
	fs.BoolVar(&f.create, "create", false, "tail a topic that does not exist yet, creating it (without, a topic nothing has used is an error and nothing is created)")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object per message")
	return cmd
}

func runTail(ctx context.Context, c *cli, f *tailFlags, topic string) error {
	if err := bus.ValidateName("topic", topic); err != nil {
		return usageError("%v", err)
	}
	if f.count < 0 {
		return usageError("--count must be >= 0")
	}
	ephemeral := f.group == ""
	if ephemeral {
		f.group = "busctl-tail-" + randomHex(4)
	}
	if err := bus.ValidateName("group", f.group); err != nil {
		return usageError("--group: %v", err)
	}
	cfg, t, err := f.conn.open(ctx, c)
	if err != nil {
		return err
	}
	defer t.Close()
	if _, real := cfg.Subscriptions[f.group]; real {
		return usageError("--group %s is a group of %s: tail would take its messages away; choose another name or leave --group out", f.group, f.conn.config)
	}
	if mapped, ok := cfg.Topics[topic]; ok {
		fmt.Fprintf(c.stderr, "busctl: event %s is published on topic %s (topics: in %s): tailing that\n", topic, mapped, f.conn.config)
		topic = mapped
	}
	if !f.create && cfg.Transport.Kind != memory.Kind {
		if err := checkTopic(ctx, t, &f.conn, cfg.Transport.Kind, topic); err != nil {
			return err
		}
	}
	start := time.Now()
	removed := false
	if ephemeral {
		defer func() {
			if !removed {
				removeTailGroup(c, t, topic, f.group)
			}
		}()
	}
	if p, ok := t.(transports.GroupProvisioner); ok {
		if err := p.ProvisionGroup(ctx, topic, f.group); err != nil {
			return fmt.Errorf("create tail group %s on topic %s: %w", f.group, topic, err)
		}
	}
	sub, err := t.Subscriber(f.group)
	if err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := sub.Subscribe(subCtx, topic)
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("subscribe to topic %s: %w", topic, err)
	}
	fmt.Fprintf(c.stderr, "busctl: tailing topic %s as group %s (Ctrl-C to stop)\n", topic, f.group)
	seen := 0
	for f.count == 0 || seen < f.count {
		var msg *message.Message
		var ok bool
		select {
		case <-ctx.Done():
		case msg, ok = <-msgs:
		}
		if msg == nil {
			if ctx.Err() == nil && !ok {
				_ = sub.Close()
				return fmt.Errorf("the subscription to topic %s closed after %d messages", topic, seen)
			}
			break
		}
		msg.Ack()
		if !f.history && publishedBefore(msg, start) {
			continue
		}
		seen++
		if f.asJSON {
			writeMessageJSON(c.stdout, msg)
		} else {
			writeMessage(c.stdout, msg)
		}
	}
	cancel()
	if err := sub.Close(); err != nil {
		fmt.Fprintf(c.stderr, "busctl: closing the subscription: %v\n", err)
	}
	if ephemeral {
		removed = true
		removeTailGroup(c, t, topic, f.group)
	}
	fmt.Fprintf(c.stderr, "busctl: tail printed %s\n", plural(seen, "message"))
	return nil
}

// publishedBefore reports whether msg's ce_time is before t.
func publishedBefore(msg *message.Message, t time.Time) bool {
	at, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(bus.MetaTime))
	return err == nil && at.Before(t)
}

// removeTailGroup deletes tail's ephemeral group, even after an interrupt.
func removeTailGroup(c *cli, t transports.Transport, topic, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := removeGroup(ctx, t, topic, group); err != nil {
		fmt.Fprintf(c.stderr, "busctl: could not delete the tail group %s on topic %s: %v\n", group, topic, err)
	}
}

// writeMessage prints msg for people: a header, sorted metadata, payload.
func writeMessage(w io.Writer, msg *message.Message) {
	md := msg.Metadata
	fmt.Fprintf(w, "--- %s %s (%d bytes)\n", orDash(md.Get(bus.MetaType)), orDash(md.Get(bus.MetaID)), len(msg.Payload))
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s: %s\n", k, md[k])
	}
	fmt.Fprintln(w, strings.TrimRight(payloadText(msg.Payload), "\n"))
}

// writeMessageJSON prints msg as one line of JSON.
func writeMessageJSON(w io.Writer, msg *message.Message) {
	out := struct {
		UUID     string            `json:"uuid"`
		Metadata map[string]string `json:"metadata"`
		payloadJSON
	}{msg.UUID, msg.Metadata, newPayloadJSON(msg.Payload)}
	b, _ := json.Marshal(out)
	fmt.Fprintf(w, "%s\n", b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
