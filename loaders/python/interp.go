package python

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"

	pyapi "github.com/dora-go/dora/apis/python"
)

// interp is the process's one embedded CPython. It is created by the first
// Load and lives until the process exits: CPython cannot be finalised and
// initialised again reliably, and Py_FinalizeEx would wait for threads the
// operators started. See doc.go, "Process exit".
type interp struct {
	api  *capi
	inst *Installation
	// ownInit is false when libpython was already initialised in this
	// process (by a native operator that embeds Python, say).
	ownInit bool

	// Objects owned for the process's lifetime (strong references).
	hostNew   uintptr    // dora._host.Host
	cancelled uintptr    // dora._host.Cancelled
	kinds     [5]uintptr // Python ints for runtime.EventType 1..4

	// main runs functions on the thread that initialised Python, with the
	// GIL held.
	main chan func()
}

// capiInUse is the interpreter's API for the Go callbacks, which CPython
// calls without any context of ours.
var capiInUse atomic.Pointer[capi]

var (
	procMu   sync.Mutex
	procIP   *interp
	procErr  error // sticky: initialisation is tried once per process
	procDone bool
)

// errInit is wrapped by errors in bringing the interpreter up.
var errInit = errors.New("embedded python failed to start")

// startInterp returns the process's interpreter, bringing it up on first
// use. Later callers must ask for the same installation.
func startInterp(ctx context.Context, setting string, log *slog.Logger) (*interp, error) {
	procMu.Lock()
	defer procMu.Unlock()
	if procDone {
		if procErr != nil {
			return nil, procErr
		}
		if err := procIP.accepts(ctx, setting); err != nil {
			return nil, err
		}
		return procIP, nil
	}
	inst, err := Discover(ctx, setting)
	if err != nil {
		// Not sticky: the user may fix PATH or DORA_PYTHON.
		return nil, err
	}
	type result struct {
		ip  *interp
		err error
	}
	res := make(chan result, 1)
	go func() {
		// This goroutine becomes the Python main thread for good: the
		// thread state made by Py_InitializeEx belongs to its OS thread.
		runtime.LockOSThread()
		ip, err := bringUp(inst, log)
		res <- result{ip, err}
		if err != nil {
			return
		}
		for f := range ip.main {
			f()
		}
	}()
	// Initialisation cannot be abandoned half way, so it is not bound to
	// ctx; it takes well under a second.
	r := <-res
	procDone, procIP, procErr = true, r.ip, r.err
	if r.err != nil {
		return nil, r.err
	}
	log.Info("embedded python started", "python", inst.String())
	return r.ip, nil
}

// accepts says whether a loader with this setting can use the running
// interpreter: a process embeds one CPython only.
func (ip *interp) accepts(ctx context.Context, setting string) error {
	if setting == "" || setting == ip.inst.Executable || setting == ip.inst.Library {
		return nil
	}
	want, err := Discover(ctx, setting)
	if err != nil {
		return err
	}
	if want.Library != ip.inst.Library {
		return fmt.Errorf("%w: this process already embeds %s; it cannot also load %s", ErrUnavailable, ip.inst, want)
	}
	return nil
}

// bringUp runs on the locked main thread.
func bringUp(inst *Installation, log *slog.Logger) (*interp, error) {
	a, err := openCAPI(inst.Library)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	pkgDir, err := extractPackage()
	if err != nil {
		return nil, fmt.Errorf("%w: extracting the dora package: %w", errInit, err)
	}
	ip := &interp{api: a, inst: inst, main: make(chan func())}
	capiInUse.Store(a)
	if int32(call0(a.fnIsInitialized)) != 0 {
		// Someone else started Python: join it as one more thread (the
		// PyGILState_Ensure is never released; this thread stays).
		log.Warn("libpython is already initialised in this process; python operators share that interpreter")
		call0(a.fnGILStateEnsure)
	} else {
		ip.ownInit = true
		restore := setenvs(map[string]string{"PYTHONHOME": inst.Home})
		// -S: site runs from bootstrap, after sys.executable names the
		// virtualenv's python, so that site.venv() sees the virtualenv.
		*(*int32)(cmem(a.noSiteFlag)) = 1
		call1(a.fnInitializeEx, 0) // 0: leave signal handling to Go
		restore()
	}
	if err := ip.bootstrap(pkgDir); err != nil {
		return nil, err
	}
	call0(a.fnSaveThread)
	return ip, nil
}

// setenvs sets environment variables for Py_InitializeEx and returns a
// function that restores them (Python's os.environ keeps its own copy; the
// bootstrap drops the ones we set from it too).
func setenvs(vars map[string]string) func() {
	type old struct {
		v  string
		ok bool
	}
	saved := map[string]old{}
	for k, v := range vars {
		o, ok := os.LookupEnv(k)
		saved[k] = old{o, ok}
		_ = os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.ok {
				_ = os.Setenv(k, o.v)
			} else {
				_ = os.Unsetenv(k)
			}
		}
	}
}

// bootstrap puts the embedded dora package first on sys.path, imports
// dora._host, registers the Go builtins and runs dora._host.bootstrap.
func (ip *interp) bootstrap(pkgDir string) error {
	a := ip.api
	fail := func(what string) error {
		return fmt.Errorf("%w: %s: %s", errInit, what, a.fetchError())
	}
	path := call1(a.fnSysGetObject, uintptr(unsafe.Pointer(cstring("path")))) // borrowed
	if path == 0 {
		return fmt.Errorf("%w: sys.path is missing", errInit)
	}
	dir := a.fsPath(pkgDir)
	if dir == 0 || int32(call3(a.fnListInsert, path, 0, dir)) != 0 {
		return fail("sys.path.insert")
	}
	a.decref(dir)
	mod := a.importModule("dora._host")
	if mod == 0 {
		return fail(fmt.Sprintf("import dora._host from %s (is PYTHONHOME=%s right?)", pkgDir, ip.inst.Home))
	}
	ip.hostNew = a.getattr(mod, "Host")
	ip.cancelled = a.getattr(mod, "Cancelled")
	boot := a.getattr(mod, "bootstrap")
	if ip.hostNew == 0 || ip.cancelled == 0 || boot == 0 {
		return fail("dora._host is incomplete")
	}
	for k := range ip.kinds {
		ip.kinds[k] = a.long(int64(k))
	}
	send, write := ip.builtin("_native_send", sendTrampoline()), ip.builtin("_native_write", writeTrampoline())
	cfg := map[string]any{"protocol": protocolVersion}
	if ip.ownInit {
		cfg["executable"] = ip.inst.Executable
		cfg["unset_env"] = []string{"PYTHONHOME"}
		cfg["run_site"] = true
		if _, userSet := os.LookupEnv("PYTHONHOME"); userSet {
			cfg["unset_env"] = []string{}
		}
	}
	js, _ := json.Marshal(cfg)
	jsObj := a.str(string(js))
	r := a.callArgs(boot, 0, jsObj, send, write)
	a.decref(jsObj)
	a.decref(boot)
	a.decref(mod)
	if r == 0 {
		return fail("dora._host.bootstrap")
	}
	a.decref(r)
	return nil
}

// protocolVersion must equal dora.PROTOCOL_VERSION in the embedded package.
const protocolVersion = 1

// builtin makes a Python function implemented by a Go callback with the
// METH_FASTCALL convention. The PyMethodDef and its name live in C memory
// for the process's lifetime.
func (ip *interp) builtin(name string, fn uintptr) uintptr {
	a := ip.api
	def := a.rawMalloc(pyMethodDefSz)
	d := unsafe.Slice((*uintptr)(cmem(def)), 4)
	d[0] = a.cstringC(name) // ml_name
	d[1] = fn               // ml_meth
	d[2] = methFastcall     // ml_flags
	d[3] = 0                // ml_doc
	return call3(a.fnCFunctionNewEx, def, 0, 0)
}

// onMain runs f on the Python main thread with the GIL held.
func (ip *interp) onMain(f func()) {
	done := make(chan struct{})
	ip.main <- func() {
		ts := call0(ip.api.fnGILStateEnsure)
		defer func() {
			call1(ip.api.fnGILStateRelease, ts)
			close(done)
		}()
		f()
	}
	<-done
}

// extractPackage writes the embedded dora package to a per-user cache
// folder named after its content hash (once per build) and returns the
// folder to put on sys.path. It falls back to a fresh temporary folder when
// the cache is not writable or holds something else.
func extractPackage() (string, error) {
	hash := pyapi.Hash()[:16]
	if base, err := os.UserCacheDir(); err == nil {
		root := filepath.Join(base, "dora-go", "python")
		dir := filepath.Join(root, hash)
		if matchesEmbedded(dir) {
			return dir, nil
		}
		if err := os.MkdirAll(root, 0o755); err == nil {
			if tmp, err := os.MkdirTemp(root, ".tmp-"); err == nil {
				if err := writeEmbedded(tmp); err == nil {
					if err := os.Rename(tmp, dir); err == nil || matchesEmbedded(dir) {
						_ = os.RemoveAll(tmp)
						if matchesEmbedded(dir) {
							return dir, nil
						}
					}
				}
				_ = os.RemoveAll(tmp)
			}
		}
	}
	tmp, err := os.MkdirTemp("", "dora-python-"+hash+"-")
	if err != nil {
		return "", err
	}
	return tmp, writeEmbedded(tmp)
}

func writeEmbedded(dir string) error {
	return fs.WalkDir(pyapi.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(pyapi.FS(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

func matchesEmbedded(dir string) bool {
	ok := true
	err := fs.WalkDir(pyapi.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, _ := fs.ReadFile(pyapi.FS(), p)
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, want) {
			ok = false
			return fs.SkipAll
		}
		return nil
	})
	return err == nil && ok
}

var (
	trampolines     sync.Once
	sendCB, writeCB uintptr
)

// The two Go callbacks are process-wide (purego callbacks are never freed);
// they find their operator through the handle Python passes.
func sendTrampoline() uintptr  { makeTrampolines(); return sendCB }
func writeTrampoline() uintptr { makeTrampolines(); return writeCB }

func makeTrampolines() {
	trampolines.Do(func() {
		sendCB = purego.NewCallback(nativeSend)
		writeCB = purego.NewCallback(nativeWrite)
	})
}
