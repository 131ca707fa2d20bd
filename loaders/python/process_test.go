package python

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

// The interpreter is per process, so tests that need another Python (a
// virtualenv, another version) or the real stdout re-run this test binary
// as a child: TestHelperProcess does what DORA_PY_HELPER says and prints
// one JSON line starting with "RESULT ".

const helperEnv = "DORA_PY_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("only runs as a child of the other tests")
	}
	res, err := helperMain(mode)
	if err != nil {
		fmt.Printf("RESULT %s\n", mustJSON(map[string]any{"error": err.Error()}))
		os.Exit(0)
	}
	fmt.Printf("RESULT %s\n", mustJSON(res))
	os.Exit(0)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func helperMain(mode string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := os.Getenv("DORA_PY_OPERATOR")
	op, err := New().Load(ctx, runtime.OperatorSpec{NodeID: "child", Operator: &descriptor.Operator{ID: "op"}, Path: path})
	if err != nil {
		return nil, err
	}
	defer op.Close()
	var rec runtimetest.Recorder
	switch mode {
	case "print":
		// Print, then stay alive: the parent must see the line before we
		// exit, so it cannot be sitting in a buffer.
		if _, err := op.OnEvent(ctx, &runtime.Event{Type: runtime.EventInput, ID: "print", Data: []byte("marker-from-python")}, &rec); err != nil {
			return nil, err
		}
		fmt.Fprintln(os.Stderr, "event done")
		time.Sleep(60 * time.Second)
		return nil, errors.New("not killed")
	case "venv":
		if _, err := op.OnEvent(ctx, &runtime.Event{Type: runtime.EventInput, ID: "x", Data: []byte("bytes-without-pyarrow")}, &rec); err != nil {
			return nil, err
		}
		var res map[string]any
		return res, json.Unmarshal(rec.Take()[0].Data, &res)
	case "version":
		// A short conformance run: echo, an exception, statuses.
		if _, err := op.OnEvent(ctx, &runtime.Event{Type: runtime.EventInput, ID: "sys"}, &rec); err != nil {
			return nil, err
		}
		var res map[string]any
		if err := json.Unmarshal(rec.Take()[0].Data, &res); err != nil {
			return nil, err
		}
		_, err := op.OnEvent(ctx, &runtime.Event{Type: runtime.EventInput, ID: "raise"}, &rec)
		res["raise"] = fmt.Sprint(err)
		st, err := op.OnEvent(ctx, &runtime.Event{Type: runtime.EventInput, ID: "describe", Data: []byte("ab"), Metadata: wire.Metadata{Parameters: map[string]wire.Parameter{"k": {Kind: wire.ParamInt, Int: 1}}}}, &rec)
		if err != nil {
			return nil, err
		}
		res["status"] = st.String()
		var d map[string]any
		if err := json.Unmarshal(rec.Take()[0].Data, &d); err != nil {
			return nil, err
		}
		res["describe"] = d
		return res, nil
	}
	return nil, fmt.Errorf("unknown helper mode %q", mode)
}

// child starts this test binary as a helper.
func child(t *testing.T, mode, operator string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "DORA_PY_OPERATOR="+operator)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// childResult runs a helper to its end and decodes its RESULT line.
func childResult(t *testing.T, cmd *exec.Cmd) map[string]any {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var res map[string]any
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatalf("helper result %q: %v", rest, err)
			}
			if e, ok := res["error"]; ok {
				t.Fatalf("helper failed: %v\n%s", e, out)
			}
			return res
		}
	}
	t.Fatalf("helper printed no result:\n%s", out)
	return nil
}

// TestPrintReachesStdoutPromptly: with no Stdout writer in the spec, print
// goes to the process's stdout (which the daemon captures) at once, not
// when the process exits.
func TestPrintReachesStdoutPromptly(t *testing.T) {
	needPython(t)
	cmd := child(t, "print", fixturePath(t, "probe.py"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "marker-from-python" {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatal("the child exited without printing the marker")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("print output did not reach stdout while the process was alive")
	}
}

// TestVirtualenv: with DORA_PYTHON naming a virtualenv's python, operators
// import the virtualenv's packages and not the base installation's (a
// plain venv hides them: here that includes pyarrow, so this also shows
// event["data"] working without pyarrow).
func TestVirtualenv(t *testing.T) {
	needPython(t)
	inst, err := Discover(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	base := inst.Executable
	if inst.Venv {
		t.Skip("the tests already run inside a virtualenv")
	}
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(base, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Skipf("cannot create a virtualenv with %s: %v\n%s", base, err, out)
	}
	py := filepath.Join(venv, "bin", "python")
	out, err := exec.Command(py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").Output()
	if err != nil {
		t.Fatalf("venv python: %v", err)
	}
	pkg := filepath.Join(strings.TrimSpace(string(out)), "dora_venv_probe_pkg")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	runtimetest.WriteFile(t, pkg, "__init__.py", []byte("MARK = 'from-the-venv'\n"))
	// An installed dora package (another version, or dora-rs) must not
	// shadow the one the runtime embeds.
	shadow := filepath.Join(filepath.Dir(pkg), "dora")
	if err := os.MkdirAll(shadow, 0o755); err != nil {
		t.Fatal(err)
	}
	runtimetest.WriteFile(t, shadow, "__init__.py", []byte("raise ImportError('the installed dora package shadowed the embedded one')\n"))

	res := childResult(t, child(t, "venv", fixturePath(t, "venv_probe.py"), EnvPython+"="+py))
	if res["mark"] != "from-the-venv" {
		t.Errorf("operator imported %v, want the venv's package", res["mark"])
	}
	if p, _ := res["prefix"].(string); !sameFile(p, venv) {
		t.Errorf("sys.prefix = %v, want %s", res["prefix"], venv)
	}
	if res["executable"] != py {
		t.Errorf("sys.executable = %v, want %s", res["executable"], py)
	}
	if res["pyarrow"] == true {
		t.Errorf("the base installation's pyarrow leaked into a plain virtualenv")
	}
	if d, _ := res["dora"].(string); strings.HasPrefix(d, venv) {
		t.Errorf("dora imported from %s, want the embedded copy", d)
	}
	if res["value_in_event"] != false || res["data"] != "bytes-without-pyarrow" {
		t.Errorf("without pyarrow: value in event %v, data %v", res["value_in_event"], res["data"])
	}
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// pythons finds CPython executables of every minor version from 3.8 on:
// pyenv's installed versions first (its shims in PATH only run the
// selected version), then python3.X in PATH.
func pythons() map[string]string {
	found := map[string]string{}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".pyenv")
		}
	}
	for minor := 8; minor <= 14; minor++ {
		name := fmt.Sprintf("python3.%d", minor)
		matches, _ := filepath.Glob(filepath.Join(root, "versions", fmt.Sprintf("3.%d.*", minor), "bin", name))
		sort.Strings(matches)
		if len(matches) > 0 {
			found[name] = matches[len(matches)-1]
		} else if p, err := exec.LookPath(name); err == nil {
			found[name] = p
		}
	}
	return found
}

// TestPythonVersions runs a short conformance check under every CPython
// from 3.8 on that this machine has, each in its own process.
func TestPythonVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	found := pythons()
	if len(found) == 0 {
		t.Skip("no python3.X executables in PATH or pyenv")
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		exe := found[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Discover(context.Background(), exe); err != nil {
				t.Skipf("%s: %v", exe, err)
			}
			res := childResult(t, child(t, "version", fixturePath(t, "probe.py"), EnvPython+"="+exe))
			t.Logf("%s: %v", exe, res["version"])
			if !strings.Contains(fmt.Sprint(res["raise"]), "ValueError: deliberate failure") {
				t.Errorf("exception: %v", res["raise"])
			}
			if res["status"] != "CONTINUE" {
				t.Errorf("status %v", res["status"])
			}
			d, _ := res["describe"].(map[string]any)
			if fmt.Sprint(d["data"]) != "[97 98]" || fmt.Sprint(d["metadata"]) != "map[k:1]" {
				t.Errorf("describe = %v", d)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	needPython(t)
	load(t, specFor(t, "echo", "echo.py")) // the interpreter is up
	if err := New().Probe(); err != nil {
		t.Errorf("Probe with the running python: %v", err)
	}
	err := (&Loader{Python: "/no/such/python3"}).Probe()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "/no/such/python3") {
		t.Errorf("Probe of a missing python: %v", err)
	}
	other := pythons()
	for name, exe := range other {
		if inst, err := Discover(context.Background(), exe); err == nil && inst.Minor != procIP.inst.Minor {
			err := (&Loader{Python: exe}).Probe()
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "already embeds") {
				t.Errorf("Probe of %s while another python runs: %v", name, err)
			}
			break
		}
	}
}

func TestDiscover(t *testing.T) {
	needPython(t)
	t.Run("missing file", func(t *testing.T) {
		_, err := Discover(context.Background(), "/no/such/python3")
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "/no/such/python3") {
			t.Errorf("Discover = %v", err)
		}
	})
	t.Run("no python3 in PATH", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		t.Setenv(EnvPython, "")
		_, err := Discover(context.Background(), "")
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no python3 in PATH") {
			t.Errorf("Discover = %v", err)
		}
	})
	t.Run("static build", func(t *testing.T) {
		// A stand-in python that describes a static build with no
		// shared library anywhere.
		dir := t.TempDir()
		fake := filepath.Join(dir, "python3")
		js := fmt.Sprintf(`{"impl":"cpython","version":[3,99,0],"executable":%q,"prefix":%q,"base_prefix":%q,"base_exec_prefix":%q,"libdir":%q,"ldlibrary":"libpython3.99.a","instsoname":"","multiarch":"","abiflags":"","shared":0}`, fake, dir, dir, dir, dir)
		runtimetest.WriteFile(t, dir, "python3", []byte("#!/bin/sh\necho '"+js+"'\n"))
		if err := os.Chmod(fake, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Discover(context.Background(), fake)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "without --enable-shared") || !strings.Contains(err.Error(), "libpython3.99") {
			t.Errorf("Discover = %v", err)
		}
	})
	t.Run("too old", func(t *testing.T) {
		dir := t.TempDir()
		fake := filepath.Join(dir, "python3")
		runtimetest.WriteFile(t, dir, "python3", []byte(`#!/bin/sh
echo '{"impl":"cpython","version":[3,7,9],"executable":"/x","prefix":"/x","base_prefix":"/x","base_exec_prefix":"/x"}'
`))
		_ = os.Chmod(fake, 0o755)
		_, err := Discover(context.Background(), fake)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "too old") {
			t.Errorf("Discover = %v", err)
		}
	})
	t.Run("not python", func(t *testing.T) {
		_, err := Discover(context.Background(), "/bin/true")
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not a CPython") {
			t.Errorf("Discover = %v", err)
		}
	})
	t.Run("library path", func(t *testing.T) {
		inst, err := Discover(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		lib, err := Discover(context.Background(), inst.Library)
		if err != nil {
			t.Fatal(err)
		}
		if lib.Major != inst.Major || lib.Minor != inst.Minor || !sameFile(lib.Home, strings.SplitN(inst.Home, ":", 2)[0]) {
			t.Errorf("from the library: %+v; from the executable: %+v", lib, inst)
		}
	})
}
