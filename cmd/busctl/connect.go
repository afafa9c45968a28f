package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/busline/busline/config"
	"github.com/busline/busline/transports"
)

// connFlags are the flags of every command that talks to a broker.
type connFlags struct {
	config  string
	timeout time.Duration
	verbose bool
}

// register declares --config, --timeout and --verbose on fs, and completes
// --config with YAML files.
func (f *connFlags) register(cmd *cobra.Command, fs *pflag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "the busline YAML `file` naming the transport (required)")
	_ = cmd.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	f.registerBroker(fs)
}

// registerBroker declares --timeout and --verbose on fs.
func (f *connFlags) registerBroker(fs *pflag.FlagSet) {
	fs.DurationVar(&f.timeout, "timeout", 15*time.Second, "how long to wait for the broker when connecting")
	fs.BoolVar(&f.verbose, "verbose", false, "print the transport's logs (debug level) to stderr")
}

// completeFromConfig completes a flag with names read from the file given
// by --config (its groups, or its mapped events); nothing if it cannot be
// read.
func (f *connFlags) completeFromConfig(names func(*config.Config) []string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		if f.config == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cfg, err := config.Load(f.config)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(cfg), cobra.ShellCompDirectiveNoFileComp
	}
}

// configGroups are the groups under subscriptions:, sorted.
func configGroups(cfg *config.Config) []string {
	return slices.Sorted(maps.Keys(cfg.Subscriptions))
}

// configEvents are the events mapped under topics:, sorted.
func configEvents(cfg *config.Config) []string {
	return slices.Sorted(maps.Keys(cfg.Topics))
}

// load loads the configuration file named by --config.
func (f *connFlags) load() (*config.Config, error) {
	if f.config == "" {
		return nil, usageError("--config FILE is required: the busline YAML file of the services to work on")
	}
	return config.Load(f.config)
}

// logger returns the transports' logger: errors only, everything with
// --verbose.
func (f *connFlags) logger(c *cli) *slog.Logger {
	level := slog.LevelError
	if f.verbose {
		level = slog.LevelDebug
	} else {
		goredis.SetLogger(quietRedis{}) // go-redis logs every failed dial itself
	}
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
}

// open loads the configuration and connects to its transport, checking that
// the broker answers. The caller closes the transport.
func (f *connFlags) open(ctx context.Context, c *cli) (*config.Config, transports.Transport, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	kind := cfg.Transport.Kind
	if kind == "memory" {
		fmt.Fprintf(c.stderr, "busctl: warning: %s uses the memory transport, which keeps messages inside one process: busctl sees none of your services' messages, and they see nothing busctl does. Point --config at a file whose transport.kind is rabbitmq, redis or kafka.\n", f.config)
	}
	openCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, err := cfg.OpenTransport(openCtx, f.logger(c))
	if err != nil {
		if errors.Is(err, transports.ErrUnknownKind) {
			return nil, nil, err
		}
		return nil, nil, unreachable(kind, f, err)
	}
	if err := t.Health(openCtx); err != nil {
		_ = t.Close()
		return nil, nil, unreachable(kind, f, err)
	}
	return cfg, t, nil
}

// unreachable explains a failure to connect to the broker.
func unreachable(kind string, f *connFlags, err error) error {
	return fmt.Errorf("cannot reach the %s broker of %s (waited at most --timeout %s): %w\n(is the broker running, and is transport.%s in %s right? nothing was changed)", kind, f.config, f.timeout, err, kind, f.config)
}

// quietRedis drops go-redis's own logs; the transport reports what matters.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
