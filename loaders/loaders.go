// Package loaders is the one place where operator loaders are registered.
package loaders

import (
	"fmt"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/loaders/isolated"
	"github.com/dora-go/dora/loaders/python"
	"github.com/dora-go/dora/loaders/sharedlib"
	"github.com/dora-go/dora/loaders/wasm"
	"github.com/dora-go/dora/runtime"
)

// New returns a fresh loader for every source kind compiled into this binary.
func New() map[descriptor.SourceKind]runtime.Loader {
	return map[descriptor.SourceKind]runtime.Loader{
		descriptor.SourceSharedLibrary: sharedlib.New(nil),
		descriptor.SourceWASM:          wasm.New(wasm.Config{}),
		descriptor.SourcePython:        python.New(),
	}
}

// NewIsolated returns the loader of operators marked `isolate: true`: it
// runs each in a `dora operator-host` process of its own, which loads it
// with New's loader of its kind (ServeOperatorHost).
func NewIsolated() runtime.Loader { return isolated.New(New(), isolated.Config{}) }

// ServeOperatorHost is the body of the hidden `dora operator-host`
// subcommand that NewIsolated's loader starts.
func ServeOperatorHost() error {
	defer Shutdown()
	return isolated.Serve(isolated.ServeConfig{Loaders: New()})
}

// Probe says whether operators of the given kind can run on this machine:
// nil, or an error a user can act on.
func Probe(kind descriptor.SourceKind) error {
	l, ok := New()[kind]
	if !ok {
		return fmt.Errorf("no %s loader is built into this binary yet", kind)
	}
	if p, ok := l.(runtime.Prober); ok {
		return p.Probe()
	}
	return nil
}

// Shutdown flushes what loaded code buffered (C stdio) before the process
// exits.
func Shutdown() {
	sharedlib.FlushC()
}
