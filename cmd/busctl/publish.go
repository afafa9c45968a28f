package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/busline/busline/bus"
)

func runPublish(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "publish", "--config FILE --event NAME [--key K] (--data JSON | --file F)", `
Publishes one event, the JSON payload given by --data or read from --file
("-" for stdin), under the event name NAME, with the CloudEvents metadata a
typed publisher sets (ce_id, ce_type, ce_source = the config's service,
ce_time, content-type) on the topic the config maps NAME to (topics:), or NAME.
A typed handler of that event accepts it. It returns once the broker has the
message. Only groups already provisioned on the topic receive it.`)
	var conn connFlags
	conn.register(fs)
	event := fs.String("event", "", "the event `name`, such as orders.placed (required)")
	key := fs.String("key", "", "the ordering `key` (ce_partitionkey; the Kafka partition key)")
	data := fs.String("data", "", "the payload, a `JSON` document")
	file := fs.String("file", "", "read the JSON payload from `F` (\"-\" for stdin)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	if *event == "" {
		return usageError("--event NAME is required")
	}
	if err := bus.ValidateName("event", *event); err != nil {
		return usageError("--event: %v", err)
	}
	payload, err := readPayload(c, *data, *file)
	if err != nil {
		return err
	}
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
	if *key != "" {
		opts = append(opts, bus.WithKey(*key))
	}
	if err := bus.Publish(ctx, b, bus.RawEvent{Name: *event, Data: payload}, opts...); err != nil {
		return fmt.Errorf("%w\n(the broker may or may not have the message: check with busctl tail before publishing again)", err)
	}
	fmt.Fprintf(c.stdout, "published %s to topic %s (%d bytes", *event, topicOf(cfg.Topics, *event), len(payload))
	if *key != "" {
		fmt.Fprintf(c.stdout, ", key %s", *key)
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
