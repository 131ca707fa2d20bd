package sharedlib

import (
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libc holds the process's C library functions the loader needs, resolved
// once through the global symbol scope (RTLD_DEFAULT), so that free() is the
// very allocator an operator's malloc() used, LD_PRELOADed ones included.
type libcFuncs struct {
	malloc, calloc, free uintptr
	fflush, setvbuf      uintptr
	// stdout is the FILE* of C's stdout.
	stdout uintptr
	// glibcFILE: stdout is a glibc struct _IO_FILE, whose public layout
	// lets flushStdout see whether anything is buffered without a call.
	glibcFILE bool

	// The two callbacks every operator's SendOutput_t points at. purego
	// callback slots are never freed (2000 per process), so there is one of
	// each per process, and env_ptr tells the operators apart.
	sendOutputCB uintptr
	noopCB       uintptr // retain and release
}

var (
	libcOnce   sync.Once
	libcLoaded atomic.Bool
	libc       libcFuncs
	libcErr    error
)

// Offsets of _IO_write_base and _IO_write_ptr in glibc's struct _IO_FILE
// (bits/types/struct_FILE.h) on LP64: int _flags, then six char* fields.
const (
	glibcWriteBase = 32
	glibcWritePtr  = 40
)

// C's setvbuf mode for line buffering (same value in glibc and musl).
const cIOLBF = 1

// loadLibc resolves the C library and, the first time, makes C's stdout
// line-buffered: on a pipe (how the daemon captures a node's output) C
// stdio is otherwise fully buffered and what an operator prints would sit
// in a 4 KiB buffer, or be lost when the process exits through os.Exit.
func loadLibc() error {
	libcOnce.Do(func() { libcErr = initLibc() })
	return libcErr
}

func initLibc() error {
	// dlerror is per thread: keep dlsym and its dlerror on one.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	var missing []string
	sym := func(name string) uintptr {
		p, err := purego.Dlsym(purego.RTLD_DEFAULT, name)
		if err != nil || p == 0 {
			missing = append(missing, name)
		}
		return p
	}
	l := libcFuncs{
		malloc:  sym("malloc"),
		calloc:  sym("calloc"),
		free:    sym("free"),
		fflush:  sym("fflush"),
		setvbuf: sym("setvbuf"),
	}
	if len(missing) > 0 {
		return fmt.Errorf("the C library does not provide %v (is this binary statically linked?)", missing)
	}
	// glibc and musl export the FILE* variable as stdout, macOS as
	// __stdoutp. Without it, stdout is only flushed by FlushC and Close.
	for _, name := range []string{"stdout", "__stdoutp"} {
		if p, err := purego.Dlsym(purego.RTLD_DEFAULT, name); err == nil && p != 0 {
			l.stdout = *(*uintptr)(ptrFromC(p))
			break
		}
	}
	if p, err := purego.Dlsym(purego.RTLD_DEFAULT, "gnu_get_libc_version"); err == nil && p != 0 {
		l.glibcFILE = unsafe.Sizeof(uintptr(0)) == 8
	}
	if l.stdout != 0 {
		purego.SyscallN(l.setvbuf, l.stdout, 0, cIOLBF, 0)
	}
	l.sendOutputCB = purego.NewCallback(sendOutputTrampoline)
	l.noopCB = purego.NewCallback(func(env uintptr) {})
	libc = l
	libcLoaded.Store(true)
	return nil
}

func cMalloc(n uintptr) unsafe.Pointer {
	r, _, _ := purego.SyscallN(libc.malloc, n)
	return ptrFromC(r)
}

func cCalloc(n uintptr) unsafe.Pointer {
	r, _, _ := purego.SyscallN(libc.calloc, 1, n)
	return ptrFromC(r)
}

func cFree(p uintptr) {
	if p != 0 {
		purego.SyscallN(libc.free, p)
	}
}

// cString copies s into a fresh malloc'd, NUL-terminated buffer and returns
// it as a Vec (len excludes the NUL). The receiver frees it.
func cString(s string) (cVec, bool) {
	p := cMalloc(uintptr(len(s)) + 1)
	if p == nil {
		return cVec{}, false
	}
	b := unsafe.Slice((*byte)(p), len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return cVec{ptr: uintptr(p), len: uintptr(len(s)), cap: uintptr(len(s)) + 1}, true
}

// takeCString copies out and frees an error buffer an operator handed
// over. Trailing NULs (len counted with the terminator) are dropped and
// absurd lengths truncated.
func takeCString(v cVec) string {
	if v.ptr == 0 {
		return ""
	}
	const maxLen = 64 << 10
	n, suffix := v.len, ""
	if n > maxLen {
		n, suffix = maxLen, "... (truncated)"
	}
	b := cBytes(v.ptr, n)
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	s := string(b) + suffix
	cFree(v.ptr)
	return s
}

// flushStdout writes out what C code left in stdout's buffer. On glibc it
// first peeks at the FILE's write pointers, so the common case (nothing
// buffered) costs two loads instead of a C call.
func flushStdout() {
	if libc.stdout == 0 {
		return
	}
	if libc.glibcFILE {
		f := ptrFromC(libc.stdout)
		base := *(*uintptr)(unsafe.Add(f, glibcWriteBase))
		ptr := *(*uintptr)(unsafe.Add(f, glibcWritePtr))
		if ptr <= base {
			return
		}
	}
	purego.SyscallN(libc.fflush, libc.stdout)
}

// FlushC flushes every C stdio output stream of the process (fflush(NULL)).
// The loader already flushes C's stdout after every call into an operator
// and when it closes one; call FlushC before the process exits (os.Exit
// does not flush C buffers) to catch what operator threads printed since.
// It does nothing if no shared-library operator was ever loaded, and is
// safe to call from any goroutine at any time.
func FlushC() {
	if !libcReady() {
		return
	}
	purego.SyscallN(libc.fflush, 0)
}

func libcReady() bool { return libcLoaded.Load() }
