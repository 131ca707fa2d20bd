package sharedlib

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dora-go/dora/internal/testcc"
	"github.com/dora-go/dora/runtime"
)

// buildSeed compiles examples/c-dataflow/operator.c, the seed document's
// operator.c with only its #include line changed, with -Wall -Werror; it
// falls back to -Wall alone, logging the warnings, should a compiler warn
// about the seed's own code.
func buildSeed(tb testing.TB) string {
	tb.Helper()
	cc := testcc.Compiler(tb)
	out := filepath.Join(tb.TempDir(), "liboperator.so")
	src := filepath.Join("..", "..", "examples", "c-dataflow", "operator.c")
	base := []string{"-shared", "-fPIC", "-Wall", "-O2", "-I", abiInclude, "-o", out, src}
	if msg, err := exec.Command(cc, append([]string{"-Werror"}, base...)...).CombinedOutput(); err == nil {
		return out
	} else {
		tb.Logf("seed operator.c does not build with -Werror (%v):\n%s", err, msg)
	}
	if msg, err := exec.Command(cc, base...).CombinedOutput(); err != nil {
		tb.Fatalf("seed operator.c does not build: %v\n%s", err, msg)
	}
	return out
}

// TestSeedOperator runs the seed's operator.c unchanged: on input
// "message" it sends "counter" = "The current counter value is N", and it
// ignores other inputs and the stop event.
func TestSeedOperator(t *testing.T) {
	lib := buildSeed(t)
	for _, portable := range []bool{false, true} {
		t.Run(fmt.Sprintf("portable=%v", portable), func(t *testing.T) {
			if portable {
				withPortableCalls(t)
			}
			h := installAllocHooks(t)
			// The dataflow names it build/operator for build/liboperator.so.
			op := loadLib(t, strings.TrimSuffix(strings.Replace(lib, "liboperator", "operator", 1), ".so"))
			for i := 1; i <= 3; i++ {
				out := one(t, op, "message", []byte(fmt.Sprintf("hello %d", i)))
				want := fmt.Sprintf("The current counter value is %d", i)
				if out.ID != "counter" || string(out.Data) != want {
					t.Fatalf("output %q=%q, want counter=%q", out.ID, out.Data, want)
				}
			}
			if st, outs, err := send(t, op, "other", nil); err != nil || st != runtime.StatusContinue || len(outs) != 0 {
				t.Fatalf("unexpected input: status %v, %d outputs, err %v", st, len(outs), err)
			}
			var rec discard
			if st, err := op.OnEvent(ctxFor(t), &runtime.Event{Type: runtime.EventStop}, rec); err != nil || st != runtime.StatusContinue {
				t.Fatalf("stop: %v %v", st, err)
			}
			// The seed mallocs (strdup) its output id and data and never
			// frees them: the loader does, three times two buffers.
			var frees int
			h.mu.Lock()
			for _, n := range h.frees {
				frees += n
			}
			h.mu.Unlock()
			if frees < 6 {
				t.Errorf("the loader freed %d buffers, want at least the 6 the seed handed over", frees)
			}
		})
	}
}
