package python

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// capi is the part of the CPython C API this loader calls, resolved from
// libpython with Dlsym and called with purego.SyscallN (no reflection on the
// hot path). Only fixed-arity functions are used: purego cannot make C
// varargs calls. Macros (Py_INCREF, PyBytes_AS_STRING, Py_None, ...) are not
// symbols; their function or data-symbol equivalents are used instead.
//
// Unless a comment says otherwise, every method must be called on a thread
// that holds the GIL.
type capi struct {
	lib uintptr

	// Lifecycle and threads. These are safe without the GIL.
	fnIsInitialized     uintptr // int Py_IsInitialized(void)
	fnInitializeEx      uintptr // void Py_InitializeEx(int)
	fnSaveThread        uintptr // PyThreadState* PyEval_SaveThread(void)
	fnRestoreThread     uintptr // void PyEval_RestoreThread(PyThreadState*)
	fnGILStateEnsure    uintptr // PyGILState_STATE PyGILState_Ensure(void)
	fnGILStateRelease   uintptr // void PyGILState_Release(PyGILState_STATE)
	fnGILStateThis      uintptr // PyThreadState* PyGILState_GetThisThreadState(void)
	fnThreadIdent       uintptr // unsigned long PyThread_get_thread_ident(void)
	fnSetAsyncExc       uintptr // int PyThreadState_SetAsyncExc(unsigned long, PyObject*)
	fnRawMalloc         uintptr // void* PyMem_RawMalloc(size_t)
	fnRawFree           uintptr // void PyMem_RawFree(void*)
	fnIncRef, fnDecRef  uintptr // void Py_IncRef(PyObject*), Py_DecRef
	fnUnicodeFromString uintptr // PyObject* PyUnicode_FromStringAndSize(const char*, Py_ssize_t)
	fnUnicodeAsUTF8     uintptr // const char* PyUnicode_AsUTF8AndSize(PyObject*, Py_ssize_t*)
	fnUnicodeDecodeFS   uintptr // PyObject* PyUnicode_DecodeFSDefault(const char*)
	fnBytesFromString   uintptr // PyObject* PyBytes_FromStringAndSize(const char*, Py_ssize_t)
	fnBytesAsString     uintptr // int PyBytes_AsStringAndSize(PyObject*, char**, Py_ssize_t*)
	fnLongFromLongLong  uintptr // PyObject* PyLong_FromLongLong(long long)
	fnLongAsLongLong    uintptr // long long PyLong_AsLongLong(PyObject*)
	fnMemoryView        uintptr // PyObject* PyMemoryView_FromMemory(char*, Py_ssize_t, int)
	fnTupleNew          uintptr // PyObject* PyTuple_New(Py_ssize_t)
	fnTupleSetItem      uintptr // int PyTuple_SetItem(PyObject*, Py_ssize_t, PyObject*) (steals)
	fnCall              uintptr // PyObject* PyObject_Call(PyObject*, PyObject*, PyObject*)
	fnVectorcall        uintptr // PyObject* PyObject_Vectorcall(PyObject*, PyObject* const*, size_t, PyObject*); 3.11+ only, else 0
	fnGetAttrString     uintptr // PyObject* PyObject_GetAttrString(PyObject*, const char*)
	fnStr               uintptr // PyObject* PyObject_Str(PyObject*)
	fnImportModule      uintptr // PyObject* PyImport_ImportModule(const char*)
	fnErrOccurred       uintptr // PyObject* PyErr_Occurred(void)
	fnErrFetch          uintptr // void PyErr_Fetch(PyObject**, PyObject**, PyObject**)
	fnErrClear          uintptr // void PyErr_Clear(void)
	fnSysGetObject      uintptr // PyObject* PySys_GetObject(const char*) (borrowed)
	fnListInsert        uintptr // int PyList_Insert(PyObject*, Py_ssize_t, PyObject*)
	fnCFunctionNewEx    uintptr // PyObject* PyCFunction_NewEx(PyMethodDef*, PyObject*, PyObject*)
	fnGetBuffer         uintptr // int PyObject_GetBuffer(PyObject*, Py_buffer*, int)
	fnBufferRelease     uintptr // void PyBuffer_Release(Py_buffer*)

	none       uintptr // &_Py_NoneStruct, the address Py_None expands to
	noSiteFlag uintptr // &Py_NoSiteFlag (int), the legacy -S switch
}

// Constants of the C API.
const (
	pyBufRead     = 0x100 // PyBUF_READ for PyMemoryView_FromMemory
	pyBufSimple   = 0     // PyBUF_SIMPLE for PyObject_GetBuffer
	methFastcall  = 0x0080
	pyBufferSize  = 80 // sizeof(Py_buffer) on 64-bit platforms
	pyMethodDefSz = 32 // sizeof(PyMethodDef) on 64-bit platforms
	rtldNowGlobal = purego.RTLD_NOW | purego.RTLD_GLOBAL
)

// pyBuffer mirrors Py_buffer (Include/pybuffer.h, unchanged since 3.3) on
// 64-bit platforms. Only buf and len are read.
type pyBuffer struct {
	Buf        uintptr
	Obj        uintptr
	Len        int64
	ItemSize   int64
	ReadOnly   int32
	NDim       int32
	Format     uintptr
	Shape      uintptr
	Strides    uintptr
	SubOffsets uintptr
	Internal   uintptr
}

var _ [pyBufferSize - unsafe.Sizeof(pyBuffer{})]byte
var _ [unsafe.Sizeof(pyBuffer{}) - pyBufferSize]byte

// errSymbols is wrapped when libpython lacks a function this loader needs.
var errSymbols = errors.New("libpython lacks a required function")

// openCAPI dlopens libpython with RTLD_NOW|RTLD_GLOBAL (extension modules
// resolve Py* symbols from the global namespace) and resolves the symbols.
func openCAPI(path string) (*capi, error) {
	lib, err := purego.Dlopen(path, rtldNowGlobal)
	if err != nil {
		return nil, fmt.Errorf("dlopen %s: %w", path, err)
	}
	a := &capi{lib: lib}
	required := []struct {
		p    *uintptr
		name string
	}{
		{&a.fnIsInitialized, "Py_IsInitialized"},
		{&a.fnInitializeEx, "Py_InitializeEx"},
		{&a.fnSaveThread, "PyEval_SaveThread"},
		{&a.fnRestoreThread, "PyEval_RestoreThread"},
		{&a.fnGILStateEnsure, "PyGILState_Ensure"},
		{&a.fnGILStateRelease, "PyGILState_Release"},
		{&a.fnGILStateThis, "PyGILState_GetThisThreadState"},
		{&a.fnThreadIdent, "PyThread_get_thread_ident"},
		{&a.fnSetAsyncExc, "PyThreadState_SetAsyncExc"},
		{&a.fnRawMalloc, "PyMem_RawMalloc"},
		{&a.fnRawFree, "PyMem_RawFree"},
		{&a.fnIncRef, "Py_IncRef"},
		{&a.fnDecRef, "Py_DecRef"},
		{&a.fnUnicodeFromString, "PyUnicode_FromStringAndSize"},
		{&a.fnUnicodeAsUTF8, "PyUnicode_AsUTF8AndSize"},
		{&a.fnUnicodeDecodeFS, "PyUnicode_DecodeFSDefault"},
		{&a.fnBytesFromString, "PyBytes_FromStringAndSize"},
		{&a.fnBytesAsString, "PyBytes_AsStringAndSize"},
		{&a.fnLongFromLongLong, "PyLong_FromLongLong"},
		{&a.fnLongAsLongLong, "PyLong_AsLongLong"},
		{&a.fnMemoryView, "PyMemoryView_FromMemory"},
		{&a.fnTupleNew, "PyTuple_New"},
		{&a.fnTupleSetItem, "PyTuple_SetItem"},
		{&a.fnCall, "PyObject_Call"},
		{&a.fnGetAttrString, "PyObject_GetAttrString"},
		{&a.fnStr, "PyObject_Str"},
		{&a.fnImportModule, "PyImport_ImportModule"},
		{&a.fnErrOccurred, "PyErr_Occurred"},
		{&a.fnErrFetch, "PyErr_Fetch"},
		{&a.fnErrClear, "PyErr_Clear"},
		{&a.fnSysGetObject, "PySys_GetObject"},
		{&a.fnListInsert, "PyList_Insert"},
		{&a.fnCFunctionNewEx, "PyCFunction_NewEx"},
		{&a.fnGetBuffer, "PyObject_GetBuffer"},
		{&a.fnBufferRelease, "PyBuffer_Release"},
		{&a.none, "_Py_NoneStruct"},
		{&a.noSiteFlag, "Py_NoSiteFlag"},
	}
	var missing []string
	for _, s := range required {
		addr, err := purego.Dlsym(lib, s.name)
		if err != nil || addr == 0 {
			missing = append(missing, s.name)
			continue
		}
		*s.p = addr
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: %w: %v", path, errSymbols, missing)
	}
	// PyObject_Vectorcall is a real symbol from 3.11 on; before, it is an
	// inline function and calls go through PyObject_Call with a tuple.
	if addr, err := purego.Dlsym(lib, "PyObject_Vectorcall"); err == nil {
		a.fnVectorcall = addr
	}
	return a, nil
}

// call0 to call4 call a C function and return its first result register.
// Pointers converted to uintptr in their argument lists stay alive and
// unmoved for the duration of the call (go:uintptrescapes), as with
// purego.SyscallN itself.
//
//go:uintptrescapes
func call0(fn uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn)
	return r
}

//go:uintptrescapes
func call1(fn, a1 uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, a1)
	return r
}

//go:uintptrescapes
func call2(fn, a1, a2 uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, a1, a2)
	return r
}

//go:uintptrescapes
func call3(fn, a1, a2, a3 uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, a1, a2, a3)
	return r
}

//go:uintptrescapes
func call4(fn, a1, a2, a3, a4 uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, a1, a2, a3, a4)
	return r
}

// cmem turns an address of C memory (never Go memory) into a pointer.
// unsafe.Add keeps go vet's unsafeptr check quiet; checkptr accepts it
// because the address is outside the Go heap.
func cmem(addr uintptr) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(nil), addr) }

// cstring returns a NUL-terminated copy of s for the duration of one call.
func cstring(s string) *byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return &b[0]
}

// ptrOf returns the address of b's first byte, or 0 for an empty slice. The
// caller keeps b alive across the C call with runtime.KeepAlive.
func ptrOf(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

func (a *capi) incref(o uintptr) {
	if o != 0 {
		call1(a.fnIncRef, o)
	}
}

func (a *capi) decref(o uintptr) {
	if o != 0 {
		call1(a.fnDecRef, o)
	}
}

// newNone returns a new reference to None.
func (a *capi) newNone() uintptr {
	call1(a.fnIncRef, a.none)
	return a.none
}

func (a *capi) str(s string) uintptr {
	b := []byte(s)
	r, _, _ := purego.SyscallN(a.fnUnicodeFromString, ptrOf(b), uintptr(len(b)))
	runtime.KeepAlive(b)
	return r
}

func (a *capi) fsPath(s string) uintptr {
	return call1(a.fnUnicodeDecodeFS, uintptr(unsafe.Pointer(cstring(s))))
}

func (a *capi) bytes(b []byte) uintptr {
	r, _, _ := purego.SyscallN(a.fnBytesFromString, ptrOf(b), uintptr(len(b)))
	runtime.KeepAlive(b)
	return r
}

func (a *capi) long(v int64) uintptr { return call1(a.fnLongFromLongLong, uintptr(v)) }

// goString copies a Python str into a Go string; ok is false when o is not
// a str (the Python error is cleared).
func (a *capi) goString(o uintptr) (string, bool) {
	var n int64
	p, _, _ := purego.SyscallN(a.fnUnicodeAsUTF8, o, uintptr(unsafe.Pointer(&n)))
	if p == 0 {
		call0(a.fnErrClear)
		return "", false
	}
	return string(unsafe.Slice((*byte)(cmem(p)), n)), true
}

// bytesView returns the contents of a Python bytes object without copying;
// it is valid while the caller holds a reference to o.
func (a *capi) bytesView(o uintptr) ([]byte, bool) {
	var p uintptr
	var n int64
	r, _, _ := purego.SyscallN(a.fnBytesAsString, o, uintptr(unsafe.Pointer(&p)), uintptr(unsafe.Pointer(&n)))
	if int32(r) != 0 {
		call0(a.fnErrClear)
		return nil, false
	}
	if n == 0 {
		return []byte{}, true
	}
	return unsafe.Slice((*byte)(cmem(p)), n), true
}

func (a *capi) getattr(o uintptr, name string) uintptr {
	return call2(a.fnGetAttrString, o, uintptr(unsafe.Pointer(cstring(name))))
}

func (a *capi) importModule(name string) uintptr {
	return call1(a.fnImportModule, uintptr(unsafe.Pointer(cstring(name))))
}

// callArgs calls fn with positional arguments (borrowed references) and
// returns a new reference or 0 with a Python error set. scratch must hold
// len(args) pointers of C memory when vectorcall is available.
func (a *capi) callArgs(fn uintptr, scratch uintptr, args ...uintptr) uintptr {
	if a.fnVectorcall != 0 && scratch != 0 {
		vec := unsafe.Slice((*uintptr)(cmem(scratch)), len(args))
		copy(vec, args)
		r, _, _ := purego.SyscallN(a.fnVectorcall, fn, scratch, uintptr(len(args)), 0)
		return r
	}
	t := call1(a.fnTupleNew, uintptr(len(args)))
	if t == 0 {
		return 0
	}
	for i, o := range args {
		call1(a.fnIncRef, o)
		call3(a.fnTupleSetItem, t, uintptr(i), o) // steals the reference
	}
	r := call3(a.fnCall, fn, t, 0)
	call1(a.fnDecRef, t)
	return r
}

// fetchError clears the pending Python error and returns its text,
// "Type: message". It is used for errors raised outside dora._host, which
// formats full tracebacks itself.
func (a *capi) fetchError() string {
	if call0(a.fnErrOccurred) == 0 {
		return "unknown error (no Python exception set)"
	}
	var typ, val, tb uintptr
	purego.SyscallN(a.fnErrFetch, uintptr(unsafe.Pointer(&typ)), uintptr(unsafe.Pointer(&val)), uintptr(unsafe.Pointer(&tb)))
	defer a.decref(typ)
	defer a.decref(val)
	defer a.decref(tb)
	name := "Exception"
	if typ != 0 {
		if n := a.getattr(typ, "__name__"); n != 0 {
			name, _ = a.goString(n)
			a.decref(n)
		} else {
			call0(a.fnErrClear)
		}
	}
	msg := ""
	if val != 0 {
		if s := call1(a.fnStr, val); s != 0 {
			msg, _ = a.goString(s)
			a.decref(s)
		} else {
			call0(a.fnErrClear)
		}
	}
	if msg == "" {
		return name
	}
	return name + ": " + msg
}

// rawMalloc allocates n bytes of C memory (zeroed). PyMem_RawMalloc does
// not need the GIL.
func (a *capi) rawMalloc(n int) uintptr {
	p := call1(a.fnRawMalloc, uintptr(n))
	if p == 0 {
		panic("python: PyMem_RawMalloc failed")
	}
	clear(unsafe.Slice((*byte)(cmem(p)), n))
	return p
}

// cstringC copies s into C memory that is never freed, for names that
// CPython keeps (PyMethodDef.ml_name).
func (a *capi) cstringC(s string) uintptr {
	p := a.rawMalloc(len(s) + 1)
	copy(unsafe.Slice((*byte)(cmem(p)), len(s)), s)
	return p
}
