package transports_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestOpenUnknownKind(t *testing.T) {
	t.Parallel()
	tests := []struct{ kind, want string }{
		{"rabbitmq", `forgotten import? add _ "github.com/busline/busline/transports/rabbitmq"`},
		{"nats", `unknown transport kind "nats" (registered: [`},
	}
	for _, tt := range tests {
		_, err := transports.Open(context.Background(), tt.kind, transports.OpenParams{})
		if !errors.Is(err, transports.ErrUnknownKind) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, want ErrUnknownKind saying %q", tt.kind, err, tt.want)
		}
	}
}

// runs numbers the kinds a test registers, so that -count=N registers new
// ones each time: the registry is global and refuses a kind twice.
var runs atomic.Int32

func TestOpenPassesParams(t *testing.T) {
	t.Parallel()
	run := runs.Add(1)
	kind, failingKind := fmt.Sprintf("test-params-%d", run), fmt.Sprintf("test-failing-%d", run)
	var got transports.OpenParams
	transports.Register(kind, transports.Registration{Open: func(_ context.Context, p transports.OpenParams) (transports.Transport, error) {
		got = p
		return memory.New(memory.Config{}), nil
	}})
	tr, err := transports.Open(context.Background(), kind, transports.OpenParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if got.Service != "busline" || got.Logger == nil {
		t.Errorf("opener got service %q logger %v, want the defaults busline and slog.Default()", got.Service, got.Logger)
	}
	if !transports.Registered(kind) || !transports.Registered(memory.Kind) {
		t.Error("Registered does not report registered kinds")
	}
	failing := errors.New("bad url")
	transports.Register(failingKind, transports.Registration{Open: func(context.Context, transports.OpenParams) (transports.Transport, error) { return nil, failing }})
	if _, err := transports.Open(context.Background(), failingKind, transports.OpenParams{}); !errors.Is(err, failing) || !strings.Contains(err.Error(), "open "+failingKind+" transport") {
		t.Errorf("Open = %v, want the opener's error, naming the kind", err)
	}
	if _, err := transports.EffectiveConfig(kind, transports.OpenParams{}); !errors.Is(err, transports.ErrNoConfig) {
		t.Errorf("EffectiveConfig of a kind registered without Config = %v, want ErrNoConfig", err)
	}
	if _, err := transports.EffectiveConfig("test-never-registered", transports.OpenParams{}); !errors.Is(err, transports.ErrUnknownKind) {
		t.Errorf("EffectiveConfig of an unknown kind = %v, want ErrUnknownKind", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	opener := transports.Registration{Open: func(context.Context, transports.OpenParams) (transports.Transport, error) { return nil, nil }}
	for name, register := range map[string]func(){
		"Duplicate": func() { transports.Register(memory.Kind, opener) },
		"EmptyKind": func() { transports.Register("", opener) },
		"NilOpener": func() { transports.Register("test-nil", transports.Registration{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic")
				}
			}()
			register()
		})
	}
}
