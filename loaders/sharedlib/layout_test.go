package sharedlib

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"testing"
	"unsafe"

	"github.com/dora-go/dora/internal/testcc"
)

// TestCLayoutMatchesGo compiles a C program that prints sizeof and offsetof
// of every struct of abi/c/operator_types.h and compares each number with
// the Go mirror (purego inserts no padding: a mismatch corrupts memory).
func TestCLayoutMatchesGo(t *testing.T) {
	var (
		vec  cVec
		res  cResult
		ini  cInitResult
		evr  cOnEventResult
		meta cMetadata
		in   cInput
		ev   cRawEvent
		out  cOutput
		clo  cClosure
		so   cSendOutput
	)
	want := map[string]uintptr{
		"Vec_uint8_t size":                             unsafe.Sizeof(vec),
		"Vec_uint8_t.ptr offset":                       unsafe.Offsetof(vec.ptr),
		"Vec_uint8_t.len offset":                       unsafe.Offsetof(vec.len),
		"Vec_uint8_t.cap offset":                       unsafe.Offsetof(vec.cap),
		"DoraResult_t size":                            unsafe.Sizeof(res),
		"DoraResult_t.error offset":                    unsafe.Offsetof(res.err),
		"DoraInitResult_t size":                        unsafe.Sizeof(ini),
		"DoraInitResult_t.result offset":               unsafe.Offsetof(ini.result),
		"DoraInitResult_t.operator_context offset":     unsafe.Offsetof(ini.ctx),
		"DoraStatus_t size":                            unsafe.Sizeof(evr.status),
		"OnEventResult_t size":                         unsafe.Sizeof(evr),
		"OnEventResult_t.result offset":                unsafe.Offsetof(evr.result),
		"OnEventResult_t.status offset":                unsafe.Offsetof(evr.status),
		"Metadata_t size":                              unsafe.Sizeof(meta),
		"Metadata_t.open_telemetry_context offset":     unsafe.Offsetof(meta.otel),
		"Input_t size":                                 unsafe.Sizeof(in),
		"Input_t.id offset":                            unsafe.Offsetof(in.id),
		"Input_t.data offset":                          unsafe.Offsetof(in.data),
		"Input_t.metadata offset":                      unsafe.Offsetof(in.meta),
		"RawEvent_t size":                              unsafe.Sizeof(ev),
		"RawEvent_t.input offset":                      unsafe.Offsetof(ev.input),
		"RawEvent_t.input_closed offset":               unsafe.Offsetof(ev.inputClosed),
		"RawEvent_t.stop offset":                       unsafe.Offsetof(ev.stop),
		"RawEvent_t.error offset":                      unsafe.Offsetof(ev.err),
		"Output_t size":                                unsafe.Sizeof(out),
		"Output_t.id offset":                           unsafe.Offsetof(out.id),
		"Output_t.data offset":                         unsafe.Offsetof(out.data),
		"Output_t.metadata offset":                     unsafe.Offsetof(out.meta),
		"ArcDynFn1_DoraResult_Output_t size":           unsafe.Sizeof(clo),
		"ArcDynFn1_DoraResult_Output_t.env_ptr offset": unsafe.Offsetof(clo.env),
		"ArcDynFn1_DoraResult_Output_t.call offset":    unsafe.Offsetof(clo.call),
		"ArcDynFn1_DoraResult_Output_t.release offset": unsafe.Offsetof(clo.release),
		"ArcDynFn1_DoraResult_Output_t.retain offset":  unsafe.Offsetof(clo.retain),
		"SendOutput_t size":                            unsafe.Sizeof(so),
		"SendOutput_t.send_output offset":              unsafe.Offsetof(so.sendOutput),
	}
	for _, std := range []string{"-std=c11", "-std=gnu17", "-std=c99"} {
		t.Run(std, func(t *testing.T) {
			prog := buildProgram(t, "layout.c", std)
			outb, err := exec.Command(prog).Output()
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			sc := bufio.NewScanner(bytes.NewReader(outb))
			for sc.Scan() {
				var a, b string
				var n uintptr
				if _, err := fmt.Sscanf(sc.Text(), "%s %s %d", &a, &b, &n); err != nil {
					t.Fatalf("bad line %q: %v", sc.Text(), err)
				}
				key := a + " " + b
				w, ok := want[key]
				if !ok {
					t.Errorf("C prints %q, which the Go side does not mirror", key)
					continue
				}
				seen[key] = true
				if w != n {
					t.Errorf("%s: C says %d, Go says %d", key, n, w)
				}
			}
			for k := range want {
				if !seen[k] {
					t.Errorf("%s: not printed by the C program", k)
				}
			}
		})
	}
}

// TestHeaderCompilesAsCXX checks that operator_api.h is usable from C++
// (extern "C", static_assert) too.
func TestHeaderCompilesAsCXX(t *testing.T) {
	cc := testcc.Compiler(t)
	cmd := exec.Command(cc, "-x", "c++", "-std=c++11", "-fsyntax-only", "-Wall", "-Werror", "-I", abiInclude, "-")
	cmd.Stdin = bytes.NewReader([]byte("#include \"operator_api.h\"\nint main() { return sizeof(Output_t) == 72 ? 0 : 1; }\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("C++")) || bytes.Contains(out, []byte("cc1plus")) {
			t.Skipf("%s cannot compile C++ here: %s", cc, out)
		}
		t.Fatalf("%v\n%s", err, out)
	}
}
