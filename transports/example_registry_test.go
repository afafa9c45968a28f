package transports_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
)

// A transport registers how to open it, and how to show its configuration,
// under its kind from its package's init function, as database/sql drivers
// do; config.Open and busctl then open it by the kind named in YAML, and
// busctl config show prints EffectiveConfig. Here a kind that opens a
// memory transport.
func ExampleRegister() {
	config := func(p transports.OpenParams) (memory.Config, error) {
		cfg := memory.Config{MaxMessageBytes: 1 << 20} // this kind's default
		err := p.DecodeSection(&cfg)                   // the transport.example-inproc section, strictly
		return cfg, err
	}
	transports.Register("example-inproc", transports.Registration{
		Open: func(ctx context.Context, p transports.OpenParams) (transports.Transport, error) {
			cfg, err := config(p)
			if err != nil {
				return nil, err
			}
			return memory.New(cfg), nil
		},
		Config: func(p transports.OpenParams) (any, error) {
			cfg, err := config(p)
			return &cfg, err
		},
	})

	t, err := transports.Open(context.Background(), "example-inproc", transports.OpenParams{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	fmt.Println(transports.Registered("example-inproc"), t.Features().MaxMessageBytes, t.Health(context.Background()))
	cfg, err := transports.EffectiveConfig("example-inproc", transports.OpenParams{})
	fmt.Printf("%+v %v\n", *cfg.(*memory.Config), err)
	// Output:
	// true 1048576 <nil>
	// {Clock:<nil> MaxMessageBytes:1048576} <nil>
}

// Open finds the transport registered under a kind. A transport whose
// package was not imported is an error that says which import to add.
func ExampleOpen() {
	t, err := transports.Open(context.Background(), memory.Kind, transports.OpenParams{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	fmt.Printf("%T\n", t)

	_, err = transports.Open(context.Background(), "kafka", transports.OpenParams{})
	fmt.Println(errors.Is(err, transports.ErrUnknownKind))
	fmt.Println(err)
	// Output:
	// *memory.Transport
	// true
	// unknown transport kind "kafka" (forgotten import? add _ "github.com/busline/busline/transports/kafka" or _ "github.com/busline/busline/transports/all")
}
