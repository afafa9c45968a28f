package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/busline/busline/config"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/kafka"
	"github.com/busline/busline/transports/memory"
	"github.com/busline/busline/transports/rabbitmq"
	"github.com/busline/busline/transports/redis"
)

func runConfigValidate(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "config validate", "[--connect] FILE", `
Checks FILE as strictly as the library loads it: unknown keys (with "did you
mean"), wrong types, durations without units, invalid settings and undefined
environment variables, each with its file:line:column, all at once; and the
section of the transport it names (transport.<kind>). With --connect it also
connects to the broker and checks its health. Prints "FILE: ok" and exits 0,
or prints every problem and exits 1.`)
	var conn connFlags
	fs.BoolVar(&conn.verbose, "verbose", false, "print the transport's logs (debug level) to stderr, with --connect")
	connect := fs.Bool("connect", false, "also connect to the broker and check that it answers")
	fs.DurationVar(&conn.timeout, "timeout", 15*time.Second, "how long to wait for the broker, with --connect")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("expected one FILE, got %d arguments", len(pos))
	}
	conn.config = pos[0]
	cfg, err := config.Load(conn.config)
	if err != nil {
		return err
	}
	if _, err := transportSection(cfg); err != nil {
		return err
	}
	if *connect {
		_, t, err := conn.open(ctx, c)
		if err != nil {
			return err
		}
		_ = t.Close()
	}
	groups := make([]string, 0, len(cfg.Subscriptions))
	for g := range cfg.Subscriptions {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	fmt.Fprintf(c.stdout, "%s: ok (service %s, transport %s, groups: %s)\n", conn.config, cfg.Service, cfg.Transport.Kind, listOrNone(groups))
	if *connect {
		fmt.Fprintf(c.stdout, "%s: the %s broker answers\n", conn.config, cfg.Transport.Kind)
	}
	return nil
}

func runConfigShow(_ context.Context, c *cli, args []string) error {
	fs := newFlags(c, "config show", "FILE", `
Prints the configuration busline would run with: every default filled in,
each group's effective settings and failure policy, environment variables
expanded, passwords and URL credentials redacted. The output is itself a
valid configuration file. Keys of the transport section that are not shown
take the transport's defaults (go doc github.com/busline/busline/transports/<kind> Config).`)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("expected one FILE, got %d arguments", len(pos))
	}
	cfg, err := config.Load(pos[0])
	if err != nil {
		return err
	}
	section, err := transportSection(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "# effective configuration of %s (defaults filled, secrets redacted)\n", pos[0])
	writeEffective(c.stdout, cfg, section)
	return nil
}

// transportSection strictly decodes the section of cfg's transport kind into
// that transport's Config, without connecting. It returns nil for a kind
// registered by a transport busctl does not know.
func transportSection(cfg *config.Config) (any, error) {
	kind := cfg.Transport.Kind
	var into any
	switch kind {
	case memory.Kind:
		into = &memory.Config{}
	case rabbitmq.Kind:
		into = &rabbitmq.Config{}
	case redis.Kind:
		into = &redis.Config{}
	case kafka.Kind:
		into = &kafka.Config{}
	default:
		if !transports.Registered(kind) {
			return nil, fmt.Errorf("transport.kind: %w %q: busctl knows %s", transports.ErrUnknownKind, kind, strings.Join(transports.Kinds(), ", "))
		}
		return nil, nil
	}
	if err := cfg.Transport.Decode(into); err != nil {
		return nil, err
	}
	return into, nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none listed"
	}
	return strings.Join(s, ", ")
}
