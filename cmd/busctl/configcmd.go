package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/busline/busline/config"
	"github.com/busline/busline/transports"
)

func newConfigCmd(c *cli) *cobra.Command {
	return newGroupCmd("config", "check and show configuration files", newConfigValidateCmd(c), newConfigShowCmd(c))
}

// yamlFiles completes a FILE argument with YAML files.
func yamlFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}

func newConfigValidateCmd(c *cli) *cobra.Command {
	var conn connFlags
	var connect bool
	cmd := &cobra.Command{
		Use:   "validate [--connect] FILE",
		Short: "check a configuration file as strictly as the library does",
		Long: `Checks FILE as strictly as the library loads it: unknown keys (with "did you
mean"), wrong types, durations without units, invalid settings and undefined
environment variables, each with its file:line:column, all at once; and the
section of the transport it names (transport.<kind>). With --connect it also
connects to the broker and checks its health. Prints "FILE: ok" and exits 0,
or prints every problem and exits 1.`,
		Example:           "  busctl config validate --connect shop.yaml",
		Args:              oneArg("FILE"),
		ValidArgsFunction: yamlFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn.config = args[0]
			return runConfigValidate(cmd.Context(), c, &conn, connect)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&connect, "connect", false, "also connect to the broker and check that it answers")
	conn.registerBroker(fs)
	return cmd
}

func runConfigValidate(ctx context.Context, c *cli, conn *connFlags, connect bool) error {
	cfg, err := config.Load(conn.config)
	if err != nil {
		return err
	}
	if _, err := transportSection(cfg); err != nil {
		return err
	}
	if connect {
		_, t, err := conn.open(ctx, c)
		if err != nil {
			return err
		}
		_ = t.Close()
	}
	fmt.Fprintf(c.stdout, "%s: ok (service %s, transport %s, groups: %s)\n", conn.config, cfg.Service, cfg.Transport.Kind, listOrNone(configGroups(cfg)))
	if connect {
		fmt.Fprintf(c.stdout, "%s: the %s broker answers\n", conn.config, cfg.Transport.Kind)
	}
	return nil
}

func newConfigShowCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE",
		Short: "print the effective configuration, defaults filled, secrets redacted",
		Long: `Prints the configuration busline would run with: every default filled in,
each group's effective settings and failure policy, environment variables
expanded, passwords and URL credentials redacted. The output is itself a
valid configuration file. Keys of the transport section that are not shown
take the transport's defaults (go doc github.com/busline/busline/transports/<kind> Config).`,
		Example:           "  busctl config show shop.yaml > effective.yaml",
		Args:              oneArg("FILE"),
		ValidArgsFunction: yamlFiles,
		RunE:              func(_ *cobra.Command, args []string) error { return runConfigShow(c, args[0]) },
	}
}

func runConfigShow(c *cli, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	section, invalid := transportSection(cfg)
	if section == nil && invalid != nil {
		return invalid
	}
	fmt.Fprintf(c.stdout, "# effective configuration of %s (defaults filled, secrets redacted)\n", path)
	if err := writeEffective(c.stdout, cfg, section); err != nil {
		return err
	}
	if invalid != nil {
		return fmt.Errorf("the configuration shown is not valid: %w", invalid)
	}
	return nil
}

// transportSection returns the configuration cfg's transport would be
// opened with, its section decoded strictly over the transport's defaults,
// without connecting, and the error of its validation. It returns nil for a
// kind whose transport does not describe its configuration, and nil with
// the error for a section that does not decode.
func transportSection(cfg *config.Config) (any, error) {
	kind := cfg.Transport.Kind
	section, err := transports.EffectiveConfig(kind, transports.OpenParams{Service: cfg.Service, Decode: cfg.Transport.Decode})
	switch {
	case errors.Is(err, transports.ErrUnknownKind):
		return nil, fmt.Errorf("transport.kind: %w %q: busctl knows %s", transports.ErrUnknownKind, kind, strings.Join(transports.Kinds(), ", "))
	case errors.Is(err, transports.ErrNoConfig):
		return nil, nil
	}
	return section, err
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none listed"
	}
	return strings.Join(s, ", ")
}
