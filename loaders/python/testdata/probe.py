"""A python operator that reports what it sees, for the loader's tests.

Each INPUT id is a command; results go out as JSON or arrays."""
import json
import os
import sys
import time

from dora import DoraStatus


def _describe(ev):
    out = {k: ev.get(k) for k in ("type", "id", "error")}
    if ev["type"] == "INPUT":
        out["data"] = list(ev["data"])
        out["metadata"] = ev["metadata"]
        out["has_value"] = "value" in ev
        if "value" in ev:
            v = ev["value"]
            out["value_type"] = str(v.type)
            out["value"] = v.to_pylist()
    return json.dumps(out).encode()


def _fail():
    raise ValueError("deliberate failure")


class Operator:
    def __init__(self):
        self.kept = None
        self.events = 0

    def on_event(self, dora_event, send_output):
        self.events += 1
        if dora_event["type"] != "INPUT":
            send_output("seen", _describe(dora_event))
            return DoraStatus.CONTINUE
        cmd = dora_event["id"]
        if cmd == "describe":
            send_output("described", _describe(dora_event))
        elif cmd == "raise":
            _fail()
        elif cmd == "return_str":
            return "ok"
        elif cmd == "return_none":
            return None
        elif cmd == "sleep":
            time.sleep(float(dora_event["data"]))
        elif cmd == "spin":
            end = time.time() + float(dora_event["data"])
            while time.time() < end:
                pass
        elif cmd == "print":
            print(dora_event["data"].decode())
            print("to stderr", file=sys.stderr)
        elif cmd == "send_arrays":
            import numpy as np
            import pyarrow as pa

            meta = {
                "flag": True,
                "n": 7,
                "x": 0.5,
                "s": "text",
                "ints": [1, 2],
                "floats": [1.5],
                "strs": ["a", "b"],
                "open_telemetry_context": "trace-1",
            }
            send_output("int64", pa.array([1, 2, 3], type=pa.int64()), meta)
            send_output("numpy", np.arange(6, dtype=np.float32).reshape(2, 3))
            send_output("list", [10, 20])
            send_output("strings", pa.array(["a", None, "ccc"]))
            send_output("nested", pa.array([[1, 2], None, [3]], type=pa.list_(pa.int32())))
            send_output("bools", pa.array([True, None, False]))
            send_output("bytes", b"raw")
        elif cmd == "echo_value":
            send_output("value", dora_event["value"], dora_event["metadata"])
        elif cmd == "keep":
            self.kept = dora_event["value"]
        elif cmd == "check_kept":
            send_output("kept", json.dumps(self.kept.to_pylist()).encode())
        elif cmd == "count":
            send_output("count", str(self.events).encode())
        elif cmd == "sys":
            import dora

            info = {
                "prefix": sys.prefix,
                "base_prefix": sys.base_prefix,
                "executable": sys.executable,
                "version": list(sys.version_info[:3]),
                "dora": os.path.dirname(dora.__file__),
                "path": sys.path,
            }
            send_output("sys", json.dumps(info).encode())
        return DoraStatus.CONTINUE
