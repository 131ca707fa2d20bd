package examples_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Python test nodes, written into each test's folder. Both check their own
// process at the end: every descriptor they opened is closed and no
// shared-memory mapping is left.
const pyLeakCheck = `
import gc, os, sys

def fds():
    return set(os.listdir("/proc/self/fd"))

def memfd_mappings():
    with open("/proc/self/maps") as f:
        return [l.split()[-2] for l in f if "/memfd:" in l]

def check_clean(before, node):
    node.close()
    gc.collect()
    leaked = fds() - before
    maps = memfd_mappings()
    if leaked or maps:
        sys.exit("leaked descriptors %s, mappings %s" % (sorted(leaked), maps))
`

// pysend.py COUNT SIZE: on each tick, send payload i on "data" in the
// byte pattern of daemon/testdata/testnode (index, then one byte per page,
// then the last byte), as a numpy uint8 array.
const pySend = `import struct, sys
import numpy as np
from dora import Node
from leakcheck import fds, check_clean

count, size = int(sys.argv[1]), int(sys.argv[2])

def payload(i):
    buf = np.zeros(size, dtype=np.uint8)
    if size >= 8:
        buf[:8] = np.frombuffer(struct.pack("<Q", i), dtype=np.uint8)
    j = np.arange(8, size, 4096)
    buf[j] = (i + j) & 0xFF
    if size > 8:
        buf[-1] = i & 0xFF
    return buf

before = fds()
node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT":
        node.send_output("data", payload(sent), {"i": sent})
        sent += 1
        if sent == count:
            break
print("sent %d messages of %d bytes" % (sent, size))
del event
check_clean(before, node)
`

// pysink.py WANT: check every payload, and that large ones are zero-copy
// views of a shared-memory mapping.
const pySink = `import struct, sys
from dora import Node
from leakcheck import fds, check_clean

want = int(sys.argv[1])

def check(data):
    n = len(data)
    i = struct.unpack_from("<Q", data)[0]
    for j in range(8, n, 4096):
        if data[j] != (i + j) & 0xFF and j != n - 1:
            sys.exit("message %d corrupt at byte %d" % (i, j))
    if n > 8 and data[n - 1] != i & 0xFF:
        sys.exit("message %d corrupt at its last byte" % i)
    return i

def in_shared_mapping(addr, size):
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr and addr + size <= hi:
                return parts[1] == "r--s" and "/memfd:" in line
    return False

before = fds()
node = Node()
got, last, shared = 0, -1, 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "data":
        buf = event["value"].buffers()[1]
        i = check(memoryview(buf))
        if i <= last:
            sys.exit("message %d after %d" % (i, last))
        if event.in_shared_memory:
            if not in_shared_mapping(buf.address, buf.size):
                sys.exit("message %d: its array is not a view of a shared-memory mapping" % i)
            shared += 1
        last, got = i, got + 1
        del buf
    elif event["type"] == "INPUT_CLOSED":
        print("closed", event["id"])
    elif event["type"] == "STOP":
        print("received %d messages, last %d, %d zero-copy from shared memory" % (got, last, shared))
del event
check_clean(before, node)
if got < want:
    sys.exit("received %d messages, want %d" % (got, want))
`

const pyFail = `from dora import Node

def handle(event):
    raise ValueError("boom from a python node: input %s" % event["id"])

node = Node()
for event in node:
    if event["type"] == "INPUT":
        handle(event)
`

// pythonEnv makes this checkout's dora package importable by Python nodes.
func pythonEnv() []string {
	return []string{"PYTHONPATH=" + filepath.Join(root, "apis", "python")}
}

// runFlow writes files into a new folder, runs its dataflow.yml with dora
// run, and returns the output; wantFail says whether dora must fail.
func runFlow(t *testing.T, files map[string]string, wantFail bool) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dora, "run", "--log-dir", t.TempDir(), filepath.Join(dir, "dataflow.yml"))
	cmd.Env = append(os.Environ(), pythonEnv()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if wantFail && err == nil {
		t.Fatalf("dora run succeeded, want a failure:\n%s", out.String())
	}
	if !wantFail && err != nil {
		t.Fatalf("dora run: %v\n%s", err, out.String())
	}
	return out.String()
}

// buildTestnode builds daemon/testdata/testnode, the Go node the daemon
// tests drive, into dir.
func buildTestnode(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "testnode")
	cmd := exec.Command("go", "build", "-o", bin, "./daemon/testdata/testnode")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testnode: %v\n%s", err, out)
	}
	return bin
}

func devShm(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir("/dev/shm")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

// TestPythonNodesInteroperate runs Python and Go senders and sinks against
// each other with 8-byte (inline) and 4 MiB (shared memory) payloads. The
// Python sink asserts that large payloads are zero-copy views of the
// sender's region; both Python nodes check they leak no descriptor or
// mapping, and no file appears in /dev/shm.
func TestPythonNodesInteroperate(t *testing.T) {
	testnode := buildTestnode(t, t.TempDir())
	shmBefore := devShm(t)
	const count = 20
	const py, goNode = "python", "go"
	node := func(lang, role string, size string) string {
		if lang == py {
			if role == "sender" {
				return "    path: pysend.py\n    args: 20 " + size + "\n"
			}
			return "    path: pysink.py\n    args: \"20\"\n"
		}
		if role == "sender" {
			return "    path: " + testnode + "\n    args: source 20 " + size + "\n"
		}
		return "    path: " + testnode + "\n    args: sink 20\n"
	}
	for _, tc := range []struct {
		sender, sink string
		size         string
	}{
		{py, py, "8"}, {py, py, "4194304"},
		{goNode, py, "8"}, {goNode, py, "4194304"},
		{py, goNode, "8"}, {py, goNode, "4194304"},
	} {
		t.Run(tc.sender+"-to-"+tc.sink+"/"+tc.size, func(t *testing.T) {
			yml := "nodes:\n" +
				"  - id: sender\n" + node(tc.sender, "sender", tc.size) +
				"    inputs:\n      tick: dora/timer/millis/10\n    outputs: [data]\n" +
				"  - id: sink\n" + node(tc.sink, "sink", tc.size) +
				"    inputs:\n      data:\n        source: sender/data\n        queue_size: 100\n"
			out := runFlow(t, map[string]string{
				"dataflow.yml": yml, "pysend.py": pySend, "pysink.py": pySink, "leakcheck.py": pyLeakCheck,
			}, false)
			want := []string{"finished: 2 nodes succeeded", "sink: received 20 messages, last 19"}
			if tc.sink == py {
				shared := "0"
				if tc.size != "8" {
					shared = "20"
				}
				want = append(want, "sink: received 20 messages, last 19, "+shared+" zero-copy from shared memory", "sink: closed data")
			}
			if tc.sender == py {
				want = append(want, "sender: sent 20 messages of "+tc.size+" bytes")
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	for name := range devShm(t) {
		if !shmBefore[name] && strings.Contains(name, "dora") {
			t.Errorf("/dev/shm/%s was left behind", name)
		}
	}
}

// pyRandomSource and pyRandomSink are the Python twins of
// examples/go-dataflow's source and sink: uint64 arrays of length one.
const pyRandomSource = `import random
import pyarrow as pa
from dora import Node

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT":
        node.send_output("random", pa.array([random.getrandbits(64)], type=pa.uint64()))
        sent += 1
        if sent == 100:
            break
`

const pyRandomSink = `import sys
import pyarrow as pa
from dora import Node

node = Node()
received = 0
for event in node:
    if event["type"] == "INPUT":
        v = event["value"]
        if v.type != pa.uint64() or len(v) != 1:
            sys.exit("want one uint64, got %s of length %d" % (v.type, len(v)))
        received += 1
if received != 100:
    sys.exit("received %d values, want 100" % received)
print("all 100 uint64 arrays received")
`

// TestPythonArrowTypesCrossToGo runs examples/go-dataflow's Go source and
// sink against Python twins: an Arrow uint64 array sent by one language is
// an Arrow uint64 array for the other.
func TestPythonArrowTypesCrossToGo(t *testing.T) {
	bin := t.TempDir()
	for _, n := range []string{"source", "sink"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, n), "./examples/go-dataflow/"+n)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", n, err, out)
		}
	}
	for _, tc := range []struct{ name, source, sink, want string }{
		{"python-to-go", "path: source.py", "path: " + filepath.Join(bin, "sink"), "sink: sink: all 100 values received and checked"},
		{"go-to-python", "path: " + filepath.Join(bin, "source"), "path: sink.py", "sink: all 100 uint64 arrays received"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yml := "nodes:\n  - id: source\n    " + tc.source + "\n    inputs:\n      tick: dora/timer/millis/5\n    outputs: [random]\n" +
				"  - id: sink\n    " + tc.sink + "\n    inputs:\n      random:\n        source: source/random\n        queue_size: 200\n"
			out := runFlow(t, map[string]string{"dataflow.yml": yml, "source.py": pyRandomSource, "sink.py": pyRandomSink}, false)
			for _, w := range []string{tc.want, "finished: 2 nodes succeeded"} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestPythonNodeExceptionFailsTheDataflow checks that an exception in a
// Python node fails the dataflow with its traceback in the summary.
func TestPythonNodeExceptionFailsTheDataflow(t *testing.T) {
	out := runFlow(t, map[string]string{
		"dataflow.yml": "nodes:\n  - id: fail\n    path: fail.py\n    inputs:\n      tick: dora/timer/millis/10\n",
		"fail.py":      pyFail,
	}, true)
	for _, w := range []string{
		`node "fail" failed: exit status 1`,
		"last lines of its stderr:",
		"    Traceback (most recent call last):",
		`fail.py", line 4, in handle`,
		"    ValueError: boom from a python node: input tick",
		"failed: fail (exit status 1)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "protocol") {
		t.Errorf("a Python node that raised is reported as a protocol error:\n%s", out)
	}
}

func TestPythonDataflow(t *testing.T) {
	runExample(t, example{dir: "python-dataflow", want: []string{
		"plot: plot: frame 20: bbox (476, 348, 523, 395) matches",
		"object_detection: object_detection: 30 objects detected",
		"plot: plot: 30 images (30 in shared memory), 30 boxes checked",
		"plot: plot: every bounding box matches the square",
		"finished: 3 nodes succeeded",
	}})
}

// TestPythonBenchmark runs the benchmark with Python nodes, briefly, and
// checks its CSV has the Go benchmark's shape.
func TestPythonBenchmark(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "bench.csv")
	runExample(t, example{dir: "benchmark", file: "dataflow-python.yml", env: []string{"BENCH_COUNT=10", "BENCH_CSV=" + csv}, want: []string{
		"finished: 2 nodes succeeded",
	}})
	checkBenchCSV(t, csv)
}
