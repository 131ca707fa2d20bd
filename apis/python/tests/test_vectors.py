"""The shared vectors of abi/testdata/vectors, written by Go's encoder
(abi/wire/vectors_test.go): the Python codec must decode each frame to the
values its JSON lists, and encode those values back to the same bytes."""

import json
import struct
import math
import pathlib

import pytest

from dora import _protocol as p

VECTORS = pathlib.Path(__file__).resolve().parents[3] / "abi" / "testdata" / "vectors"
NAMES = sorted(f.stem for f in VECTORS.glob("*.json"))


def test_the_vectors_are_there():
    assert len(NAMES) >= 15, "abi/testdata/vectors is missing (go test ./abi/wire -run TestVectors -update)"


# -- values -> the vectors' JSON shape


def param_json(key, v):
    t = type(v)
    if t is bool:
        kind = "bool"
    elif t is int:
        kind = "int"
    elif t is float:
        kind = "float"
    elif t is str:
        kind = "string"
    else:
        kind = {p.IntList: "int_list", p.FloatList: "float_list", p.StrList: "string_list"}[t]
        v = list(v)
    return {"key": key, "kind": kind, "value": v}


def array_json(a):
    return {
        "format": a.format,
        "length": a.length,
        "null_count": a.null_count,
        "offset": a.offset,
        "buffers": [None if b is None else {"offset": b[0], "len": b[1]} for b in a.buffers],
        "children": [array_json(c) for c in a.children],
    }


def metadata_json(md):
    return {
        "timestamp": md.timestamp,
        "open_telemetry_context": md.open_telemetry_context,
        "parameters": [param_json(k, v) for k, v in md.parameters.items()],
        "type": None if md.type is None else array_json(md.type),
    }


def data_json(d):
    if d is None:
        return {"where": "none"}
    if isinstance(d, p.Shm):
        return {"where": "shm", "fd_attached": d.fd_attached, "region": d.region, "region_size": d.region_size, "len": d.len}
    return {"where": "inline", "hex": bytes(d).hex()}


def event_json(ev):
    t = type(ev)
    if t is p.Input:
        return {"type": "INPUT", "id": ev.id, "metadata": metadata_json(ev.metadata), "data": data_json(ev.data)}
    if t is p.InputClosed:
        return {"type": "INPUT_CLOSED", "id": ev.id}
    if t is p.Stop:
        return {"type": "STOP"}
    if t is p.Error:
        return {"type": "ERROR", "message": ev.message}
    return {"type": "UNMAP", "region": ev.region}


def message_json(m):
    t = type(m)
    if t is p.Register:
        return {"version": m.version, "dataflow_id": m.dataflow_id, "node_id": m.node_id}
    if t is p.SendOutput:
        return {"output_id": m.output_id, "metadata": metadata_json(m.metadata), "data": data_json(m.data)}
    if t is p.CloseOutputs:
        return {"output_ids": list(m.output_ids)}
    if t in (p.Release, p.DropRegions, p.Released):
        return {"regions": list(m.regions)}
    if t is p.StopDataflow:
        return {"reason": m.reason}
    if t is p.NextEvents:
        return {"max": m.max}
    if t is p.RegisterReply:
        return {"ok": m.ok, "error": m.error}
    return {"events": [event_json(e) for e in m.events]}


# -- the vectors' JSON -> values


def param_value(j):
    kind, v = j["kind"], j["value"]
    if kind == "float":
        return float(v)
    if kind == "int_list":
        return p.IntList(v)
    if kind == "float_list":
        return p.FloatList(float(x) for x in v)
    if kind == "string_list":
        return p.StrList(v)
    return v


def array_from(j):
    return p.ArrayInfo(
        j["format"],
        j["length"],
        j["null_count"],
        j["offset"],
        tuple(None if b is None else (b["offset"], b["len"]) for b in j["buffers"]),
        tuple(array_from(c) for c in j["children"]),
    )


def metadata_from(j):
    return p.Metadata(
        j["timestamp"],
        j["open_telemetry_context"],
        {q["key"]: param_value(q) for q in j["parameters"]},
        None if j["type"] is None else array_from(j["type"]),
    )


def data_from(j):
    w = j["where"]
    if w == "none":
        return None
    if w == "inline":
        return bytes.fromhex(j["hex"])
    return p.Shm(j["fd_attached"], j["region"], j["region_size"], j["len"])


def event_from(j):
    t = j["type"]
    if t == "INPUT":
        return p.Input(j["id"], metadata_from(j["metadata"]), data_from(j["data"]))
    if t == "INPUT_CLOSED":
        return p.InputClosed(j["id"])
    if t == "STOP":
        return p.Stop()
    if t == "ERROR":
        return p.Error(j["message"])
    return p.Unmap(j["region"])


def message_from(kind, m):
    if kind == "REGISTER":
        return p.Register(m["version"], m["dataflow_id"], m["node_id"])
    if kind == "SEND_OUTPUT":
        return p.SendOutput(m["output_id"], metadata_from(m["metadata"]), data_from(m["data"]))
    if kind == "CLOSE_OUTPUTS":
        return p.CloseOutputs(tuple(m["output_ids"]))
    if kind in ("RELEASE", "DROP_REGIONS", "RELEASED"):
        return {"RELEASE": p.Release, "DROP_REGIONS": p.DropRegions, "RELEASED": p.Released}[kind](tuple(m["regions"]))
    if kind == "STOP_DATAFLOW":
        return p.StopDataflow(m["reason"])
    if kind == "NEXT_EVENTS":
        return p.NextEvents(m["max"])
    if kind == "REGISTER_REPLY":
        return p.RegisterReply(m["ok"], m["error"])
    assert kind == "EVENTS"
    return p.Events(tuple(event_from(e) for e in m["events"]))


def same(a, b):
    """JSON equality where a float equals the int Go printed for it."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return not isinstance(a, bool) and not isinstance(b, bool) and float(a) == float(b) and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("name", NAMES)
def test_vector(name):
    want = json.loads((VECTORS / (name + ".json")).read_text(encoding="utf-8"))
    frame = (VECTORS / (name + ".bin")).read_bytes()
    assert len(frame) == want["frame_len"]
    n, kind, nfds = p.parse_header(frame)
    assert (n, p.kind_name(kind), nfds) == (len(frame), want["kind"], want["nfds"])

    msg = p.decode(frame)
    got = message_json(msg)
    assert same(got, want["message"]), "%s decodes to\n%s\nwant\n%s" % (name, got, want["message"])

    assert p.encode(msg) == frame, "re-encoding the decoded %s differs" % name
    assert p.encode(message_from(want["kind"], want["message"])) == frame, "encoding %s's JSON differs" % name
    # Decoding from a memoryview (what the node does) gives the same values.
    assert same(message_json(p.decode(memoryview(frame))), want["message"])


def test_the_node_hot_path_writes_the_vector_bytes():
    """send_output_frame (used by Node.send_output) matches Go's encoding."""
    frame = (VECTORS / "send_output_raw_8.bin").read_bytes()
    md = bytearray()
    p.put_metadata(md, 1_733_000_000_000_000_000)
    got = p.send_output_frame(p.encode_str("random"), md, bytes(range(1, 9)), 8)
    assert bytes(got) == frame

    frame = (VECTORS / "send_output_shm_reused.bin").read_bytes()
    md = bytearray()
    p.put_metadata(md, 100)
    got = p.send_output_shm_frame(p.encode_str("image"), md, p.Shm(False, 1, 1 << 20, 921600))
    assert bytes(got) == frame

    frame = (VECTORS / "next_events.bin").read_bytes()
    assert p.next_events_frame(256) == frame


def test_mutated_vectors_decode_or_fail_cleanly():
    """A hostile or corrupt frame must raise MalformedFrame, never another
    exception (struct.error, IndexError, UnicodeDecodeError...)."""
    import random

    rng = random.Random(7)
    frames = [(VECTORS / (n + ".bin")).read_bytes() for n in NAMES]
    for _ in range(3000):
        f = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 4)):
            if not f:
                break
            op = rng.random()
            if op < 0.6:
                f[rng.randrange(len(f))] = rng.randrange(256)
            elif op < 0.8:
                del f[rng.randrange(len(f)) :]
            else:
                f += bytes(rng.randrange(8))
        if len(f) >= 4 and rng.random() < 0.7:
            struct.pack_into("<I", f, 0, len(f))  # keep the length consistent
        try:
            msg = p.decode(bytes(f))
        except p.MalformedFrame:
            continue
        # What decodes re-encodes without error.
        p.encode(msg)
