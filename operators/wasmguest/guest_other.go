//go:build !wasip1

package wasmguest

import (
	"fmt"
	"os"
)

// Log prints msg to standard error when the operator runs natively (in a
// unit test); in a wasm guest it goes to the runtime's logger.
func Log(level Level, msg string) { fmt.Fprintf(os.Stderr, "wasmguest %d: %s\n", level, msg) }
