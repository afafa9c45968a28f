package transports_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/memory"
)

// A transport registers an Opener under its kind from its package's init
// function, as database/sql drivers do; config.Open and busctl then open it
// by the kind named in YAML. Here a kind that opens a memory transport.
func ExampleRegister() {
	transports.Register("example-inproc", func(ctx context.Context, p transports.OpenParams) (transports.Transport, error) {
		var cfg memory.Config
		if err := p.DecodeSection(&cfg); err != nil { // the transport.example-inproc section, strictly
			return nil, err
		}
		return memory.New(cfg), nil
	})

	t, err := transports.Open(context.Background(), "example-inproc", transports.OpenParams{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	fmt.Println(transports.Registered("example-inproc"), t.Features().NativeDelay, t.Health(context.Background()))
	// Output:
	// true true <nil>
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
