package transports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
)

// OpenParams is what [Open] passes to a transport's [Opener].
type OpenParams struct {
	// Service is the name of the service opening the transport. Transports use
	// it to name consumers and connections. Empty means "busline".
	Service string

	// Logger receives the transport's logs. Nil means slog.Default().
	Logger *slog.Logger

	// Decode decodes the transport's own configuration section (for example
	// transport.rabbitmq in YAML) into the struct pointed to by into, rejecting
	// unknown keys. Nil means there is no section: the transport uses its
	// defaults.
	Decode func(into any) error
}

// DecodeSection decodes the transport's configuration section into the
// struct into points to, as Decode does, and leaves it unchanged when there
// is no section (Decode is nil).
func (p OpenParams) DecodeSection(into any) error {
	if p.Decode == nil {
		return nil
	}
	return p.Decode(into)
}

// Opener opens a transport of one kind.
type Opener func(ctx context.Context, p OpenParams) (Transport, error)

// Registration is what a transport registers under its kind.
type Registration struct {
	// Open opens the transport. Required.
	Open Opener

	// Config returns the configuration Open would use for p, without
	// connecting: a pointer to the transport's Config, its section decoded
	// over its defaults and every default filled in. A section that does
	// not decode returns nil and the error; one that decodes but does not
	// validate returns the configuration and the validation's error, so
	// that tools can show both. busctl config show prints it as YAML, its
	// secrets redacted by their types (Secret, SecretURL). Nil when the
	// transport has nothing to show.
	Config func(p OpenParams) (any, error)
}

// ErrUnknownKind is returned by [Open] for a kind no transport registered.
var ErrUnknownKind = errors.New("unknown transport kind")

var (
	registryMu sync.RWMutex
	registry   = map[string]Registration{}
)

// Configured returns the Registration of a transport whose configuration
// is a C: load reads it from OpenParams (its section, and the service and
// logger), effective fills its defaults and validates it without
// connecting, and open connects. It spares each transport writing both
// functions of Registration around the same two steps.
func Configured[C any](load func(OpenParams) (C, error), effective func(*C) error, open func(context.Context, C) (Transport, error)) Registration {
	return Registration{
		Open: func(ctx context.Context, p OpenParams) (Transport, error) {
			cfg, err := load(p)
			if err != nil {
				return nil, err
			}
			return open(ctx, cfg)
		},
		Config: func(p OpenParams) (any, error) {
			cfg, err := load(p)
			if err != nil {
				return nil, err
			}
			return &cfg, effective(&cfg)
		},
	}
}

// Register makes a transport available under kind. It is meant to be called
// from the init function of the transport's package. It panics if kind is
// empty, r.Open is nil, or kind is already registered.
func Register(kind string, r Registration) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if kind == "" {
		panic("transports: Register with an empty kind")
	}
	if r.Open == nil {
		panic("transports: Register of kind " + kind + " with a nil Open")
	}
	if _, dup := registry[kind]; dup {
		panic("transports: Register called twice for kind " + kind)
	}
	registry[kind] = r
}

// Kinds returns the registered kinds, sorted.
func Kinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	kinds := make([]string, 0, len(registry))
	for k := range registry {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// Registered reports whether a transport registered kind.
func Registered(kind string) bool {
	registryMu.RLock()
	defer registryMu.RUnlock()
	_, ok := registry[kind]
	return ok
}

// Open opens a transport of the registered kind. An unknown kind yields an
// error wrapping [ErrUnknownKind] that names the import that registers it.
func Open(ctx context.Context, kind string, p OpenParams) (Transport, error) {
	r, p, err := lookup(kind, p)
	if err != nil {
		return nil, err
	}
	t, err := r.Open(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("open %s transport: %w", kind, err)
	}
	return t, nil
}

// ErrNoConfig is returned by [EffectiveConfig] for a kind whose
// registration has no Config.
var ErrNoConfig = errors.New("the transport does not describe its configuration")

// EffectiveConfig returns the configuration a transport of kind would be
// opened with for p, without connecting (see [Registration].Config): a
// pointer to the transport's own Config type. An unknown kind yields an
// error wrapping [ErrUnknownKind], a registration without Config one
// wrapping [ErrNoConfig].
func EffectiveConfig(kind string, p OpenParams) (any, error) {
	r, p, err := lookup(kind, p)
	if err != nil {
		return nil, err
	}
	if r.Config == nil {
		return nil, fmt.Errorf("%s transport: %w", kind, ErrNoConfig)
	}
	return r.Config(p)
}

// lookup returns kind's registration and p with its defaults.
func lookup(kind string, p OpenParams) (Registration, OpenParams, error) {
	registryMu.RLock()
	r, ok := registry[kind]
	registryMu.RUnlock()
	if !ok {
		return r, p, unknownKindError(kind)
	}
	if p.Service == "" {
		p.Service = "busline"
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return r, p, nil
}

// builtin lists the kinds that ship with busline, for the hint in
// unknownKindError.
var builtin = []string{"memory", "rabbitmq", "redis", "kafka"}

func unknownKindError(kind string) error {
	if slices.Contains(builtin, kind) {
		return fmt.Errorf("%w %q (forgotten import? add _ \"github.com/busline/busline/transports/%s\" or _ \"github.com/busline/busline/transports/all\")", ErrUnknownKind, kind, kind)
	}
	return fmt.Errorf("%w %q (registered: %v; a transport registers itself when its package is imported, e.g. _ \"github.com/busline/busline/transports/all\")", ErrUnknownKind, kind, Kinds())
}
