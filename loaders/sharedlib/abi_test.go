package sharedlib

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// TestSretResultsComeBackThroughTheHiddenPointer calls the probe's entry
// points by hand the way the fast path does: purego.SyscallN with a
// hidden result pointer first. The 32-byte results must land in the slot
// (pre-filled with garbage) and rax must echo the slot's address.
func TestSretResultsComeBackThroughTheHiddenPointer(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skip("the SyscallN hidden-pointer path is amd64 only")
	}
	lib := buildLib(t, "", "probe.c")
	if err := loadLibc(); err != nil {
		t.Fatal(err)
	}
	initFn, eventFn, dropFn := sym(t, lib, symInit), sym(t, lib, symOnEvent), sym(t, lib, symDrop)
	mem := cCalloc(unsafe.Sizeof(cScratch{}))
	defer cFree(uintptr(mem))
	s := (*cScratch)(mem)
	garbage := func() {
		b := unsafe.Slice((*byte)(unsafe.Pointer(&s.res)), unsafe.Sizeof(s.res))
		for i := range b {
			b[i] = 0xA5
		}
	}
	slot := uintptr(unsafe.Pointer(&s.res))

	garbage()
	r1, _, _ := purego.SyscallN(initFn, slot)
	ini := *(*cInitResult)(unsafe.Pointer(&s.res))
	if r1 != slot || ini.result.err.ptr != 0 || ini.ctx == 0 {
		t.Fatalf("init: rax=%#x (slot %#x), result %+v", r1, slot, ini)
	}

	// A STOP event: the probe returns success and CONTINUE, which must
	// overwrite all 32 bytes of garbage (error Vec and status).
	s.ev = cRawEvent{stop: true}
	garbage()
	r1, _, _ = purego.SyscallN(eventFn, slot, uintptr(unsafe.Pointer(&s.ev)), uintptr(unsafe.Pointer(&s.send)), ini.ctx)
	if r1 != slot || s.res.result.err.ptr != 0 || s.res.status != 0 {
		t.Fatalf("on_event(stop): rax=%#x (slot %#x), result %+v", r1, slot, s.res)
	}

	// An input asking for an error: the error Vec comes back in the slot.
	id, data := []byte("error_text\x00"), []byte("boom")
	s.in = cInput{
		id:   cVec{ptr: uintptr(unsafe.Pointer(&id[0])), len: 10, cap: 10},
		data: cVec{ptr: uintptr(unsafe.Pointer(&data[0])), len: 4, cap: 4},
		meta: cMetadata{otel: cVec{ptr: uintptr(unsafe.Pointer(&id[0]))}},
	}
	var pin goruntime.Pinner
	pin.Pin(&id[0])
	pin.Pin(&data[0])
	defer pin.Unpin()
	s.ev = cRawEvent{input: uintptr(unsafe.Pointer(&s.in))}
	garbage()
	r1, _, _ = purego.SyscallN(eventFn, slot, uintptr(unsafe.Pointer(&s.ev)), uintptr(unsafe.Pointer(&s.send)), ini.ctx)
	if r1 != slot || s.res.status != 0 {
		t.Fatalf("on_event(error_text): rax=%#x (slot %#x), status %d", r1, slot, s.res.status)
	}
	if got := takeCString(s.res.result.err); got != "boom" {
		t.Fatalf("on_event(error_text): error %q, want boom", got)
	}
	s.in = cInput{}

	garbage()
	r1, _, _ = purego.SyscallN(dropFn, slot, ini.ctx)
	if r1 != slot || s.res.result.err.ptr != 0 {
		t.Fatalf("drop: rax=%#x (slot %#x), result %+v", r1, slot, s.res.result)
	}
}

// TestABIMismatchIsReported loads a library built for a 16-byte-result ABI
// (dora-rs's later DoraResult_t holding a pointer): it returns in rax:rdx
// and ignores the hidden pointer, which the fast path notices.
func TestABIMismatchIsReported(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skip("the check belongs to the amd64 SyscallN path")
	}
	lib := buildLib(t, "", "abi16.c")
	_, err := New(nil).Load(ctxFor(t), specFor(lib, "abi16"))
	var oe *runtime.OperatorError
	if !errors.As(err, &oe) || oe.Phase != runtime.PhaseInit || !errors.Is(err, errABIMismatch) {
		t.Fatalf("Load = %v, want an init-phase ABI mismatch", err)
	}
	t.Log(err)
}

// TestOutputArrivesByValue: the probe sends an Output_t whose three Vecs
// (id at 0, data at 24, metadata at 48 of the 72 bytes on the stack) all
// arrive, and the input's metadata reached C.
func TestOutputArrivesByValue(t *testing.T) {
	for _, portable := range []bool{false, true} {
		t.Run(fmt.Sprintf("portable=%v", portable), func(t *testing.T) {
			if portable {
				withPortableCalls(t)
			}
			op := loadLib(t, buildLib(t, "", "probe.c"))
			ev := runtimetest.Input("meta", []byte("payload"))
			ev.Metadata = wire.Metadata{OpenTelemetryContext: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
			var rec runtimetest.Recorder
			if _, err := op.OnEvent(ctxFor(t), ev, &rec); err != nil {
				t.Fatal(err)
			}
			outs := rec.Take()
			if len(outs) != 1 {
				t.Fatalf("%d outputs", len(outs))
			}
			o := outs[0]
			if o.ID != "meta" || string(o.Data) != "payload" || o.Metadata.OpenTelemetryContext != ev.Metadata.OpenTelemetryContext {
				t.Fatalf("output %+v", o)
			}
		})
	}
}

// TestInputDataIsPassedInPlace: C sees the Go buffer's own address (no
// copy), pinned for the call.
func TestInputDataIsPassedInPlace(t *testing.T) {
	op := loadLib(t, buildLib(t, "", "probe.c"))
	data := make([]byte, 1<<20)
	out := one(t, op, "addr", data)
	if got, want := string(out.Data), strconv.FormatUint(uint64(uintptr(unsafe.Pointer(&data[0]))), 10); got != want {
		t.Fatalf("C saw data at %s, Go buffer is at %s", got, want)
	}
	if op.scratch.in.data.ptr != 0 {
		t.Error("a Go pointer stayed in C memory after the call")
	}
}

// TestEnvPtrIsAnIntegerHandle: env_ptr is a small handle, distinct per
// operator, kept across a reload; never a Go address.
func TestEnvPtrIsAnIntegerHandle(t *testing.T) {
	lib := buildLib(t, "", "probe.c")
	a, b := loadLib(t, lib), loadLib(t, lib)
	env := func(op *operator) uint64 {
		out := one(t, op, "env", nil)
		v, err := strconv.ParseUint(string(out.Data), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ea, eb := env(a), env(b)
	if ea != uint64(a.env.handle) || eb != uint64(b.env.handle) || ea == eb {
		t.Fatalf("env_ptr %d and %d, handles %d and %d", ea, eb, a.env.handle, b.env.handle)
	}
	if ea >= 1<<32 || ea == 0 {
		t.Fatalf("env_ptr %#x does not look like a handle", ea)
	}
	if err := a.Reload(ctxFor(t), specFor(lib, "a")); err != nil {
		t.Fatal(err)
	}
	if got := env(a); got != ea {
		t.Fatalf("env_ptr changed across reload: %d -> %d", ea, got)
	}
	// retain and release are callable no-ops.
	if out := one(t, a, "retain_release", nil); string(out.Data) != "ok" {
		t.Fatalf("retain_release: %q", out.Data)
	}
}

// TestCallbackFromCThread: send_output called from a pthread the operator
// created works while its dora_on_event runs, and fails cleanly (no crash,
// buffers freed) once the call has returned.
func TestCallbackFromCThread(t *testing.T) {
	lib := buildLib(t, "", "probe.c")
	op := loadLib(t, lib)
	if out := one(t, op, "thread", nil); out.ID != "from_thread" || string(out.Data) != "hi" {
		t.Fatalf("output from a C thread: %+v", out)
	}

	var rec runtimetest.Recorder
	if _, err := op.OnEvent(ctxFor(t), runtimetest.Input("late_spawn", nil), &rec); err != nil {
		t.Fatal(err)
	}
	// No event is running: the thread sends now.
	purego.SyscallN(sym(t, lib, "probe_go_late"))
	if outs := rec.Take(); len(outs) != 0 {
		t.Fatalf("a late send reached the Sender: %+v", outs)
	}
	out := one(t, op, "late_result", nil)
	if !strings.Contains(string(out.Data), errOutsideCall.Error()) {
		t.Fatalf("late send returned %q, want %q", out.Data, errOutsideCall)
	}
}

// TestHammer_SendFromManyCThreads: 8 C threads send 100 outputs each during
// one event; all arrive (run it with -race).
func TestHammer_SendFromManyCThreads(t *testing.T) {
	op := loadLib(t, buildLib(t, "", "probe.c"))
	for round := 0; round < 5; round++ {
		_, outs, err := send(t, op, "threads", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 800 {
			t.Fatalf("round %d: %d outputs, want 800", round, len(outs))
		}
	}
}

// TestEventKinds: INPUT_CLOSED, STOP and ERROR reach C in the right
// RawEvent_t fields (input_closed at 8, stop at 32, error at 40).
func TestEventKinds(t *testing.T) {
	op := loadLib(t, buildLib(t, "", "probe.c"))
	for _, ev := range []*runtime.Event{
		{Type: runtime.EventInputClosed, ID: "camera"},
		{Type: runtime.EventStop},
		{Type: runtime.EventError, Error: "upstream trouble"},
		{Type: runtime.EventInputClosed, ID: ""},
	} {
		if _, err := op.OnEvent(ctxFor(t), ev, discard{}); err != nil {
			t.Fatalf("%v: %v", ev.Type, err)
		}
	}
	if _, err := op.OnEvent(ctxFor(t), &runtime.Event{Type: 99}, discard{}); err == nil {
		t.Error("an unknown event type went through")
	}
	out := one(t, op, "log", nil)
	if want := "closed:camera|stop|error:upstream trouble|closed:"; string(out.Data) != want {
		t.Fatalf("C saw %q, want %q", out.Data, want)
	}
}

// TestStatusMapping: DoraStatus_t values map to runtime.Status; an invalid
// one is an error and CONTINUE.
func TestStatusMapping(t *testing.T) {
	op := loadLib(t, buildLib(t, "", "probe.c"))
	for b, want := range map[byte]runtime.Status{0: runtime.StatusContinue, 1: runtime.StatusStop, 2: runtime.StatusStopAll} {
		st, _, err := send(t, op, "echo_status", []byte{b})
		if err != nil || st != want {
			t.Errorf("status byte %d: %v, %v; want %v", b, st, err, want)
		}
	}
	st, _, err := send(t, op, "bad_status", nil)
	if err == nil || st != runtime.StatusContinue || !strings.Contains(err.Error(), "invalid DoraStatus_t 7") {
		t.Errorf("bad status: %v, %v", st, err)
	}
}

// TestSendErrors: a Sender's error reaches C as an error DoraResult_t; when
// the operator passes it on, OnEvent returns the Sender's error itself
// (errors.Is works); when it ignores it, OnEvent still reports it.
func TestSendErrors(t *testing.T) {
	op := loadLib(t, buildLib(t, "", "probe.c"))
	gone := errors.New("daemon gone")
	rec := runtimetest.Recorder{Err: gone}
	for _, id := range []string{"version", "ignore_send_error"} {
		_, err := op.OnEvent(ctxFor(t), runtimetest.Input(id, nil), &rec)
		var oe *runtime.OperatorError
		if !errors.Is(err, gone) || !errors.As(err, &oe) || oe.Phase != runtime.PhaseEvent {
			t.Errorf("%s: OnEvent = %v, want an on_event OperatorError wrapping %v", id, err, gone)
		}
	}
	// A panicking Sender becomes an error, not a crash through C frames.
	_, err := op.OnEvent(ctxFor(t), runtimetest.Input("version", nil), panicky{})
	if !errors.Is(err, runtime.ErrPanic) {
		t.Errorf("panicking Sender: %v", err)
	}
}

type panicky struct{}

func (panicky) Send(runtime.Output) error { panic("sender exploded") }

// TestBuffersAreFreed accounts for every buffer crossing the ABI: each
// one the operator handed over (output id/data/metadata, error strings) and
// each one the loader malloc'd (scratch, send errors) is freed by the
// loader exactly once, and an init error's buffer too.
func TestBuffersAreFreed(t *testing.T) {
	lib := buildLib(t, "", "probe.c")
	handedFn := sym(t, lib, "probe_handed") // also keeps the library mapped after Close
	h := installAllocHooks(t)
	op := loadLib(t, lib)
	ok := []struct{ id, data string }{{"version", ""}, {"meta", "m"}, {"thread", ""}, {"retain_release", ""}, {"log", ""}, {"addr", "12345678"}}
	for _, in := range ok {
		one(t, op, in.id, []byte(in.data))
	}
	if _, _, err := send(t, op, "error_text", []byte("boom")); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error_text: %v", err)
	}
	failing := &runtimetest.Recorder{Err: errors.New("nope")}
	if _, err := op.OnEvent(ctxFor(t), runtimetest.Input("version", nil), failing); err == nil {
		t.Fatal("send error lost")
	}
	for _, ev := range []*runtime.Event{{Type: runtime.EventStop}, {Type: runtime.EventError, Error: "e"}} {
		if _, err := op.OnEvent(ctxFor(t), ev, discard{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]uintptr, 8192)
	n, _, _ := purego.SyscallN(handedFn, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	handed := map[uintptr]int{}
	for _, p := range buf[:n] {
		handed[p]++
	}
	if n < 10 {
		t.Fatalf("the probe handed over only %d buffers", n)
	}
	h.balance(t, handed)

	// An init error's message buffer is freed too.
	ilib := buildLib(t, "", "init_error.c")
	last := sym(t, ilib, "init_error_last") // the address of a void* variable
	h.mu.Lock()
	h.frees = map[uintptr]int{} // addresses are reused: count from here
	h.mu.Unlock()
	if _, err := New(nil).Load(ctxFor(t), specFor(ilib, "init")); err == nil {
		t.Fatal("init_error loaded")
	}
	p := *(*uintptr)(ptrFromC(last))
	if p == 0 || h.freed(p) != 1 {
		t.Fatalf("init error buffer %#x freed %d times, want 1", p, h.freed(p))
	}
}

// TestNoLeakOverManyEvents runs 20000 events that each move malloc'd
// buffers (an output's id and data, an error string) and checks
// with glibc's mallinfo2 that the C heap does not grow with them.
func TestNoLeakOverManyEvents(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skip("reads mallinfo2 through the amd64 hidden-pointer convention")
	}
	if err := loadLibc(); err != nil {
		t.Fatal(err)
	}
	mallinfo2, err := purego.Dlsym(purego.RTLD_DEFAULT, "mallinfo2")
	if err != nil {
		t.Skip("no mallinfo2 (glibc >= 2.33) to measure the C heap with")
	}
	inUse := func() int64 {
		var mi [10]uintptr // struct mallinfo2: ten size_t, returned through a hidden pointer
		purego.SyscallN(mallinfo2, uintptr(unsafe.Pointer(&mi[0])))
		return int64(mi[7]) // uordblks: bytes in use
	}
	echo := loadLib(t, buildLib(t, "", "echo.c"))
	ev, fail := runtimetest.Input("x", []byte("hello")), runtimetest.Input("fail", nil)
	run := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := echo.OnEvent(ctxFor(t), ev, discard{}); err != nil {
				t.Fatal(err)
			}
			if _, err := echo.OnEvent(ctxFor(t), fail, discard{}); err == nil {
				t.Fatal("fail did not fail")
			}
		}
	}
	run(1000) // warm up
	before := inUse()
	const n = 20000
	run(n)
	growth := inUse() - before
	t.Logf("C heap in use grew by %d bytes over %d events", growth, 2*n)
	if growth > 256<<10 { // one leaked 8-byte buffer per event would be >= 320 KB
		t.Fatalf("C heap grew by %d bytes over %d events: buffers leak", growth, 2*n)
	}
}
