package transports_test

import (
	"context"
	"errors"
	"strings"
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

func TestOpenPassesParams(t *testing.T) {
	t.Parallel()
	var got transports.OpenParams
	transports.Register("test-params", func(_ context.Context, p transports.OpenParams) (transports.Transport, error) {
		got = p
		return memory.New(memory.Config{}), nil
	})
	tr, err := transports.Open(context.Background(), "test-params", transports.OpenParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if got.Service != "busline" || got.Logger == nil {
		t.Errorf("opener got service %q logger %v, want the defaults busline and slog.Default()", got.Service, got.Logger)
	}
	if !transports.Registered("test-params") || !transports.Registered(memory.Kind) {
		t.Error("Registered does not report registered kinds")
	}
	failing := errors.New("bad url")
	transports.Register("test-failing", func(context.Context, transports.OpenParams) (transports.Transport, error) { return nil, failing })
	if _, err := transports.Open(context.Background(), "test-failing", transports.OpenParams{}); !errors.Is(err, failing) || !strings.Contains(err.Error(), "open test-failing transport") {
		t.Errorf("Open = %v, want the opener's error, naming the kind", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	opener := func(context.Context, transports.OpenParams) (transports.Transport, error) { return nil, nil }
	for name, register := range map[string]func(){
		"Duplicate": func() { transports.Register(memory.Kind, opener) },
		"EmptyKind": func() { transports.Register("", opener) },
		"NilOpener": func() { transports.Register("test-nil", nil) },
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
