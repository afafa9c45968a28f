package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/busline/busline/bus"
)

// publishFlags are the flags of busctl publish.
type publishFlags struct {
	conn  connFlags
	event string
	key   string
	data  string
	file  string
}

func newPublishCmd(c *cli) *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish --config FILE --event NAME [--key K] (--data JSON | --file F)",
		Short: "publish one event as CloudEvents, as a typed publisher would",
		Long: `Publishes one event, the JSON payload given by --data or read from --file
("-" for stdin), under the event name NAME, with the CloudEvents metadata a
typed publisher sets (ce_id, ce_type, ce_source = the config's service,
ce_time, content-type) on the topic the config maps NAME to (topics:), or NAME.
A typed handler of that event accepts it. It returns once the broker has the
message. Only groups already provisioned on the topic receive it.`,
		Example: `  busctl publish --config shop.yaml --event orders.placed --key o-1001 --data '{"id":"o-1001"}'
  echo '{"id":"o-1003"}' | busctl publish --config shop.yaml --event orders.placed --file -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPublish(cmd.Context(), c, &f) },
	}
	fs := cmd.Flags()
	f.conn.register(cmd, fs)
	fs.StringVar(&f.event, "event", "", "the event `name`, such as orders.placed (required)")
	fs.StringVar(&f.key, "key", "", "the ordering `key` (ce_partitionkey; the Kafka partition key)")
	fs.StringVar(&f.data, "data", "", "the payload, a `JSON` document")
	fs.StringVar(&f.file, "file", "", "read the JSON payload from `F` (\"-\" for stdin)")
	_ = cmd.RegisterFlagCompletionFunc("event", f.conn.completeFromConfig(configEvents))
	_ = cmd.MarkFlagFilename("file", "json")
	return cmd
}

func runPublish(ctx context.Context, c *cli, f *publishFlags) error {
	if f.event == "" {
		return usageError("--event NAME is required")
	}
	if err := bus.ValidateName("event", f.event); err != nil {
		return usageError("--event: %v", err)
	}
	payload, err := readPayload(c, f.data, f.file)
	if err != nil {
		return err
	}
	conn := &f.conn
	cfg, t, err := conn.open(ctx, c)
	if err != nil {
		return err
	}
	defer t.Close()
	bc := cfg.BusConfig()
	bc.Logger = conn.logger(c)
	b, err := bus.New(t, bc)
	if err != nil {
		return err
	}
	defer b.Close(context.WithoutCancel(ctx))
	var opts []bus.PublishOption
	if f.key != "" {
		opts = append(opts, bus.WithKey(f.key))
	}
	if err := bus.Publish(ctx, b, bus.RawEvent{Name: f.event, Data: payload}, opts...); err != nil {
		return fmt.Errorf("%w\n(the broker may or may not have the message: check with busctl tail before publishing again)", err)
	}
	fmt.Fprintf(c.stdout, "published %s to topic %s (%d bytes", f.event, topicOf(cfg.Topics, f.event), len(payload))
	if f.key != "" {
		fmt.Fprintf(c.stdout, ", key %s", f.key)
	}
	fmt.Fprintln(c.stdout, ")")
	return nil
}

// readPayload returns the JSON payload from --data or --file.
func readPayload(c *cli, data, file string) ([]byte, error) {
	var payload []byte
	switch {
	case data != "" && file != "":
		return nil, usageError("give the payload with --data or --file, not both")
	case data != "":
		payload = []byte(data)
	case file == "-":
		b, err := io.ReadAll(c.stdin)
		if err != nil {
			return nil, fmt.Errorf("read the payload from stdin: %w", err)
		}
		payload = b
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError("--file: %v", err)
		}
		payload = b
	default:
		return nil, usageError("give the payload with --data JSON or --file F (\"-\" for stdin)")
	}
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		return nil, usageError("the payload is not valid JSON (%v): a typed handler could not decode it", err)
	}
	return payload, nil
}

// topicOf is the wire topic of event per the config's topics mapping.
func topicOf(topics map[string]string, event string) string {
	if t, ok := topics[event]; ok {
		return t
	}
	return event
}
