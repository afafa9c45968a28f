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

// ErrUnknownKind is returned by [Open] for a kind no transport registered.
var ErrUnknownKind = errors.New("unknown transport kind")

var (
	registryMu sync.RWMutex
	registry   = map[string]Opener{}
)

// Register makes a transport available under kind. It is meant to be called
// from the init function of the transport's package. It panics if kind is
// empty, opener is nil, or kind is already registered.
func Register(kind string, opener Opener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if kind == "" {
		panic("transports: Register with an empty kind")
	}
	if opener == nil {
		panic("transports: Register of kind " + kind + " with a nil opener")
	}
	if _, dup := registry[kind]; dup {
		panic("transports: Register called twice for kind " + kind)
	}
	registry[kind] = opener
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
	registryMu.RLock()
	opener, ok := registry[kind]
	registryMu.RUnlock()
	if !ok {
		return nil, unknownKindError(kind)
	}
	if p.Service == "" {
		p.Service = "busline"
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	t, err := opener(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("open %s transport: %w", kind, err)
	}
	return t, nil
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
