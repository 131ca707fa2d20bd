// Package testcc finds the C compiler that tests build their C fixtures
// with, and skips a test with a reason when there is none.
package testcc

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
)

// Compiler returns the C compiler ($CC, else `go env CC`, else cc), or
// skips the test.
func Compiler(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		cc := os.Getenv("CC")
		if cc == "" {
			if out, err := exec.Command("go", "env", "CC").Output(); err == nil {
				cc = strings.TrimSpace(string(out))
			}
		}
		if cc == "" {
			cc = "cc"
		}
		path, err = exec.LookPath(strings.Fields(cc)[0])
	})
	if err != nil {
		tb.Skipf("no C compiler to build the C fixtures (%v); set CC or install gcc", err)
	}
	return path
}
