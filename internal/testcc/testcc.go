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

// SharedLib compiles the C operator src into the shared library out as
// the loaders' tests want it: warnings are errors, and include holds the
// dora C headers. It fails the test with the compiler's output.
func SharedLib(tb testing.TB, src, out, include string, flags ...string) {
	tb.Helper()
	cc := Compiler(tb)
	args := append([]string{"-shared", "-fPIC", "-Wall", "-Werror", "-O2", "-pthread", "-I", include, "-o", out}, flags...)
	args = append(args, src)
	if msg, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, msg)
	}
}
