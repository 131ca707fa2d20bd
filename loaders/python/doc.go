// Package python runs Python operators in a CPython embedded in the runtime
// node's process, opened with purego: no cgo, so the same static `dora`
// binary (CGO_ENABLED=0) serves them.
//
// # What an operator is
//
// The file named by `python:` in a dataflow is imported under a module name
// of its own (derived from its path, one per loaded operator) and must
// define a class Operator whose __init__() takes no arguments and whose
// on_event(self, dora_event, send_output) returns a dora.DoraStatus, as in
// dora-rs. `from dora import DoraStatus` works without any pip install (see
// "The dora package"). The file's folder goes first on sys.path so that its
// neighbours import, as in dora-rs. Returning None counts as CONTINUE (the
// loader warns once per operator); any other value that is not a
// DoraStatus (or the int 0, 1 or 2) is an error naming what was returned.
//
// dora_event is a read-only mapping (a collections.abc.Mapping, so
// event["type"], `match`, `in`, .get, dict(event) and print work):
//
//   - "type": "INPUT", "INPUT_CLOSED", "STOP" or "ERROR"
//   - "id": the input id (INPUT, INPUT_CLOSED)
//   - "value": a pyarrow array built from the data and Metadata.Type (a
//     uint8 array for raw bytes); absent when pyarrow is not installed
//   - "data": the input as bytes, for older operators
//   - "metadata": a dict of the message's parameters, plus
//     "open_telemetry_context" when it is not empty
//   - "error": the message of an ERROR event
//
// value, data and metadata are built on first access: an operator that
// only looks at "type" pays for none of them.
//
// send_output(output_id, data, metadata=None) takes bytes, bytearray, a
// memoryview or anything else with the buffer protocol (sent as raw bytes
// without a copy), a pyarrow Array or ChunkedArray, a numpy array
// (flattened, through pyarrow), or a list (through pyarrow). An array with
// a single buffer is sent without a copy; other arrays are copied once into
// one buffer, each Arrow buffer at an 8-byte aligned offset, as
// wire.ArrayInfo describes. A uint8 array without nulls goes out as raw
// bytes (Metadata.Type nil). metadata values may be bool, int, float, str or
// lists of one of them; "open_telemetry_context" fills
// Metadata.OpenTelemetryContext. Sender.Send runs with the GIL released;
// its error becomes a RuntimeError raised by send_output.
//
// # Input lifetime: the copy rule
//
// The runtime's buffer (ev.Data) is only valid during OnEvent. Python sees
// it through a read-only memoryview that dora._host releases before
// OnEvent returns. By default "data" and "value" are built over one copy of
// the input into memory Python owns, made on first access and shared by
// both: an operator may keep them (or numpy views of them) forever, which
// dora-rs operators do (keeping the last image is common). Operators that
// never read them copy nothing.
//
// An Operator class that sets `zero_copy_inputs = True` gets "value" as a
// view of the runtime's buffer instead (pa.py_buffer over the memoryview):
// no copy at all, valid only during on_event. If the operator still holds
// the view (or a slice or numpy view of it) when on_event returns, the
// memoryview cannot be released (pyarrow holds a buffer export on it) and
// the event fails with an error that says so and how to fix it. Whatever
// the mode, an operator that keeps the dora_event mapping itself keeps a
// working event: the loader sees the extra reference (sys.getrefcount) and
// copies what the mapping may still hand out before the buffer goes back.
// A copy made after the fact cannot repair an array that already points at
// the runtime's buffer, which is why zero copy is an opt-in.
//
// # Threading and the GIL
//
// The interpreter is initialised once per process, on a goroutine locked to
// its OS thread that stays as Python's main thread. Each operator then gets
// a worker: a goroutine locked to a thread of its own for the operator's
// whole life, with its own PyThreadState. The import, __init__, every
// on_event, reload and drop run there, so thread-affine libraries (a sqlite3
// connection made in __init__, GUI toolkits, OpenCV windows, CUDA device
// choice, threading.local) behave as in dora-rs, which also gives each
// Python operator a thread of its own. A worker holds the GIL only while it
// runs a call; a time.sleep or any C code that releases the GIL lets other
// Python operators run. Go code of other operators never waits for Python:
// it runs on other threads, and a thread inside a C call hands its P back
// to the scheduler (after sysmon's usual 20 µs to 10 ms for long calls, as
// with any cgo call). TestGoOperatorRunsWhilePythonWorks checks both (a Go
// operator takes millions of events while a Python operator sleeps or spins
// with the GIL held).
//
// The price is a thread hop per event. Measured on the 2-vCPU test VM while
// other jobs kept its load average at 1.5-4.5 (go test -bench . -count 5;
// the Design benchmarks take the cost apart):
//
//	Python call on its own thread, no hop (DesignEventOnThread)          1.0-1.8 µs
//	empty job to a locked thread and back (DesignHandoff)                13-54 µs
//	  (11 µs at the quietest moment; raw futex ping-pong between two
//	  threads, the floor of any hop on this VM, 8-12 µs)
//	hop with both sides spinning 50 µs before parking (tried, removed)   4 µs when quiet, 33-135 µs under load
//	no-op event, default (NoopEvent)                                     25-64 µs
//	caller's thread, PyGILState_Ensure/Release (DesignEnsureRelease)     11-19 µs: a new PyThreadState
//	  each time, and 3.11 mmaps each one's frame stack
//	caller's thread, thread state kept per OS thread (NoopEventAnyThread) 1.4-3.5 µs
//
// Spinning was dropped: it only pays when both threads own a CPU at the
// same time, and on a shared machine it makes things much worse. A thread
// hop cannot get under the 10 µs target on this VM (the futex floor alone
// is 8 µs); the no-hop path does. So an Operator class may set
// `any_thread = True`: on_event then runs on the thread of the goroutine
// that called OnEvent, under PyGILState_Ensure/Release with a thread state
// that each OS thread keeps for good (pinThread): 1.4-3.5 µs per no-op
// event. Such an operator must not rely on thread identity between calls
// (its __init__ still runs on the worker). The default stays the dedicated
// thread: thread affinity breaks in ways that are hard to debug, the
// speed-up only matters for kilohertz streams, and it is what dora-rs does.
// Both at once would need the runtime to promise that it calls each
// operator from one goroutine that the loader may lock to its OS thread.
//
// Several Python operators in one process share the GIL: Python code runs
// one operator at a time, as in dora-rs.
//
// # Finding CPython
//
// The setting (Loader.Python, else $DORA_PYTHON, else python3 in PATH)
// names a python executable or a libpython shared library. An executable is
// asked (python -c) for sys.version_info, sys.prefix, sys.base_prefix and
// sysconfig's LIBDIR, LDLIBRARY, INSTSONAME, MULTIARCH and Py_ENABLE_SHARED;
// the library is the first of INSTSONAME, LDLIBRARY and the usual
// libpythonX.Y names that exists in LIBDIR, LIBDIR/MULTIARCH,
// base_prefix/lib, LIBPL, /usr/lib/MULTIARCH, /usr/lib64, /usr/lib,
// /usr/local/lib. A library path gives the version from its name and
// PYTHONHOME from the nearest parent holding lib/pythonX.Y/os.py. CPython
// 3.8 to 3.13 are tested (TestPythonVersions), as is Debian's python3 with
// its libpython3.11 package. Discover and Probe errors wrap ErrUnavailable
// and say what is missing: no python3 in PATH, a python that does not run,
// not CPython, too old, a static build (Py_ENABLE_SHARED=0) with no shared
// library anywhere (with the apt and pyenv commands that fix it), a library
// that does not dlopen or lacks a function.
//
// libpython is dlopened with RTLD_NOW|RTLD_GLOBAL (extension modules find
// the Py* symbols there). PYTHONHOME is set to the base installation's
// prefix (never a virtualenv's) for Py_InitializeEx(0) (0: signals stay
// Go's), then restored, and dropped from os.environ unless the user had set
// it. Python starts with site disabled (the legacy Py_NoSiteFlag); the
// bootstrap then sets sys.executable to the python that was found and runs
// site.main(), so that site.venv() finds pyvenv.cfg next to a virtualenv's
// python exactly as that python would: the virtualenv's site-packages come
// first, and the base installation's are hidden unless the virtualenv was
// made with --system-site-packages (TestVirtualenv). Only CPython's
// stable-ish, fixed-arity functions are called (no varargs, no macros, no
// struct fields except Py_buffer's and PyMethodDef's, unchanged since 3.3);
// PyObject_Vectorcall is used where it is a symbol (3.11+), PyObject_Call
// with a tuple before.
//
// If libpython is already initialised in the process (a native operator
// embedding Python), the loader joins that interpreter as one more thread.
//
// # The dora package
//
// apis/python/dora is embedded in the binary (package pyapi) and written
// once per build to $XDG_CACHE_HOME/dora-go/python/<hash>/ (~/.cache when
// unset; a fresh temporary folder when that is not writable or holds
// something else), put first on sys.path and imported before site runs. So
// the runtime always uses the package it was built with, which speaks its
// protocol (dora.PROTOCOL_VERSION, checked at bootstrap), even when the user
// pip-installed another dora (an older dora-go, or dora-rs's package of the
// same name): an installed copy never shadows it (TestVirtualenv).
//
// # Errors
//
// Errors are *runtime.OperatorError values naming node, operator, loader
// and phase. A Python exception wraps runtime.ErrPythonException and
// carries the formatted traceback (chained exceptions included, the
// loader's own and importlib's frames left out): phase "load" for import
// failures (syntax errors, missing modules, files that are not Python),
// "init" for Operator(), "on_event", "reload", "drop". A module without
// Operator, or an Operator without on_event, wraps runtime.ErrMissingSymbol.
// After an on_event exception the operator keeps taking events.
//
// # Printing
//
// sys.stdout and sys.stderr are replaced by routers. Text written on an
// operator's thread goes to OperatorSpec.Stdout / Stderr when the spec
// gives them (through a Go callback, GIL released during the write);
// everything else (no writer, threads the operator started, other code) is
// written unbuffered (write_through, like python -u) to file descriptors 1
// and 2, which the daemon captures: it is there before on_event returns
// (TestPrintReachesStdoutPromptly). C code writing to fd 1 itself is
// unaffected.
//
// # Cancellation
//
// When OnEvent's ctx is done while Python runs, dora._host.Cancelled (a
// BaseException) is raised in the operator's thread with
// PyThreadState_SetAsyncExc; the event fails with it. It interrupts Python
// bytecode, not a blocking C call (time.sleep, a long numpy operation):
// OnEvent still waits for Python to return, because Python may be reading
// ev.Data until then. Load behaves the same but returns at once; the
// operator is dropped when its import or __init__ ends.
//
// # Hot reload
//
// Reload (runtime.Reloader) re-executes the file (from source: no bytecode
// cache is read or written, so an edit within the same second is not
// missed) into a new module object under the same name and makes a new
// Operator instance. The old instance's state is lost unless the new class
// defines on_reload(self, previous), which is called with the old instance
// (to copy attributes, or take over open resources) before the swap. drop()
// is not called on the old instance; it is simply dereferenced. On any
// failure (import, __init__, on_reload) the old module and instance stay.
//
// # Close and process exit
//
// Close calls the instance's optional drop() method, drops the instance (so
// __del__ runs if nothing else references it), forgets its module, flushes
// the streams and ends the worker thread. Calls after the first return nil.
//
// Py_FinalizeEx is never called: other operators may still use the
// interpreter, it cannot be initialised again reliably, and finalising
// waits for the non-daemon threads operators start (it can hang). At process
// exit Python simply stops with the process: output is already written
// (streams are unbuffered), but atexit handlers and __del__ of objects still
// alive do not run. Operators that must clean up do it in drop().
package python
