"""dora._host driven from Python, with the Go builtins replaced by fakes."""

import gc
import sys
import textwrap

import pytest

from dora import DoraStatus, _event, _host, _wire


@pytest.fixture
def sent(monkeypatch):
    """Records what send_output hands to Go: (handle, id, bytes, blob)."""
    out = []

    def fake_send(handle, output_id, payload, blob):
        out.append((handle, output_id, bytes(memoryview(payload)), blob))
        return None

    monkeypatch.setattr(_host, "_native_send", fake_send)
    return out


def write_operator(tmp_path, body, name="op.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return str(p)


def host_for(tmp_path, body, name="op.py"):
    h = _host.Host(7, write_operator(tmp_path, body, name), "node", "op")
    rc = h.load()
    assert rc == _host.RC_OK, h.error
    return h


def test_dora_status_is_an_int_enum():
    assert [int(s) for s in DoraStatus] == [0, 1, 2]
    assert DoraStatus.STOP == 1 and DoraStatus(2) is DoraStatus.STOP_ALL


def test_event_mapping_behaves_like_a_dict():
    ev = _host.Event(_host.INPUT, "image", memoryview(b"abc"), _wire.encode({"k": 1}, None), None)
    assert ev["type"] == "INPUT" and ev["id"] == "image"
    assert ev["data"] == b"abc"
    assert ev["metadata"] == {"k": 1}
    assert "value" in ev and "error" not in ev
    assert ev.get("error") is None and ev.get("id") == "image"
    assert set(ev) == {"type", "id", "value", "data", "metadata"}
    assert dict(ev)["data"] == b"abc"
    assert "'type': 'INPUT'" in repr(ev)
    if sys.version_info >= (3, 10):
        ns = {}
        exec(
            textwrap.dedent(
                """
                match ev:
                    case {"type": "INPUT", "id": "image", "metadata": {"k": k}}:
                        got = k
                """
            ),
            {"ev": ev},
            ns,
        )
        assert ns["got"] == 1


def test_other_event_kinds():
    assert dict(_host.Event(_host.STOP, None, None, None, None)) == {"type": "STOP"}
    assert dict(_host.Event(_host.INPUT_CLOSED, "x", None, None, None)) == {"type": "INPUT_CLOSED", "id": "x"}
    err = _host.Event(_host.ERROR, None, None, None, "boom")
    assert err["error"] == "boom" and "id" not in err
    with pytest.raises(KeyError):
        err["id"]


def test_value_is_an_arrow_array():
    pa = pytest.importorskip("pyarrow")
    raw = _host.Event(_host.INPUT, "x", memoryview(b"\x01\x02"), None, None)
    assert raw["value"].type == pa.uint8() and raw["value"].to_pylist() == [1, 2]
    from dora._arrow import array_to_layout

    data, info = array_to_layout(pa.array([1, 2, 3], type=pa.int64()))
    typed = _host.Event(_host.INPUT, "x", memoryview(bytes(memoryview(data))), _wire.encode(None, info), None)
    assert typed["value"].to_pylist() == [1, 2, 3]
    assert typed["metadata"] == {}


def test_value_without_pyarrow(monkeypatch):
    monkeypatch.setattr(_event, "_pa", False)
    ev = _host.Event(_host.INPUT, "x", memoryview(b"ab"), None, None)
    assert "value" not in ev and ev.get("value") is None
    with pytest.raises(KeyError, match="pyarrow is not installed"):
        ev["value"]
    assert ev["data"] == b"ab"


def test_on_event_status_codes(tmp_path, sent):
    h = host_for(
        tmp_path,
        """
        from dora import DoraStatus
        class Operator:
            def on_event(self, ev, send_output):
                return {"stop": DoraStatus.STOP, "all": DoraStatus.STOP_ALL, "none": None,
                        "int": 1, "str": "ok", "bool": True}.get(ev["id"], DoraStatus.CONTINUE)
        """,
    )
    ev = lambda i: h.event(_host.INPUT, i, None, None, None)  # noqa: E731
    assert ev("x") == 0 and ev("stop") == 1 and ev("all") == 2 and ev("int") == 1
    assert ev("none") == _host.RC_NONE
    assert ev("str") == _host.RC_EXCEPTION
    assert "returned 'ok' (str); expected a dora.DoraStatus" in h.error
    assert ev("bool") == _host.RC_EXCEPTION and "(bool)" in h.error


def test_exception_traceback_names_the_user_code_only(tmp_path):
    h = host_for(
        tmp_path,
        """
        class Operator:
            def on_event(self, ev, send_output):
                return helper()
        def helper():
            return 1 / 0
        """,
    )
    assert h.event(_host.INPUT, "x", None, None, None) == _host.RC_EXCEPTION
    assert "Traceback (most recent call last)" in h.error
    assert "in helper" in h.error and "ZeroDivisionError" in h.error
    assert "_host.py" not in h.error


def test_send_output_payloads(tmp_path, sent):
    pa = pytest.importorskip("pyarrow")
    np = pytest.importorskip("numpy")
    h = host_for(tmp_path, "class Operator:\n    def on_event(self, ev, send):\n        pass\n")
    h.send_output("bytes", b"ab")
    h.send_output("bytearray", bytearray(b"cd"))
    h.send_output("memoryview", memoryview(b"xefx")[1:3])
    h.send_output("arrow", pa.array([1, 2], type=pa.int64()), {"k": "v"})
    h.send_output("numpy", np.arange(6, dtype=np.float32).reshape(2, 3))
    h.send_output("list", [1, 2, 3])
    got = {s[1]: s for s in sent}
    assert got["bytes"][2:] == (b"ab", None)
    assert got["bytearray"][2:] == (b"cd", None)
    assert got["memoryview"][2:] == (b"ef", None)
    _, params, layout = _wire.decode(got["arrow"][3])
    assert params == {"k": "v"} and layout[0] == "l" and got["arrow"][2] == b"\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0"
    assert _wire.decode(got["numpy"][3])[2][:2] == ("f", 6)
    assert _wire.decode(got["list"][3])[2][:2] == ("l", 3)
    assert all(s[0] == 7 for s in sent)


@pytest.mark.parametrize(
    "data,match",
    [("text", "data is a str"), (object(), "cannot send object"), (None, "cannot send NoneType")],
)
def test_send_output_refuses(tmp_path, sent, data, match):
    h = host_for(tmp_path, "class Operator:\n    def on_event(self, ev, send):\n        pass\n")
    with pytest.raises(TypeError, match=match):
        h.send_output("x", data)
    with pytest.raises(TypeError, match="output id must be a str"):
        h.send_output(1, b"")


def test_send_errors_raise(tmp_path, monkeypatch):
    monkeypatch.setattr(_host, "_native_send", lambda *a: "daemon gone")
    h = host_for(tmp_path, "class Operator:\n    def on_event(self, ev, send):\n        send('o', b'x')\n")
    assert h.event(_host.INPUT, "x", None, None, None) == _host.RC_EXCEPTION
    assert "send_output('o') failed: daemon gone" in h.error


KEEPER = """
class Operator:
    zero_copy_inputs = {zc}
    def __init__(self):
        self.kept = None
    def on_event(self, ev, send_output):
        if ev["id"] == "keep_event":
            self.kept = ev
        elif ev["id"] == "keep_value":
            self.kept = ev["value"]
        elif ev["id"] == "read":
            self.kept["value"]
        return None
"""


def test_a_kept_event_stays_valid(tmp_path):
    pytest.importorskip("pyarrow")
    h = host_for(tmp_path, KEEPER.format(zc=False))
    buf = bytearray(b"\x01\x02\x03")
    assert h.event(_host.INPUT, "keep_event", memoryview(buf), None, None) == _host.RC_NONE
    buf[:] = b"\xff\xff\xff"  # the runtime reuses its buffer
    assert h._inst.kept["data"] == b"\x01\x02\x03"
    assert h._inst.kept["value"].to_pylist() == [1, 2, 3]


def test_a_kept_value_is_a_copy_by_default(tmp_path):
    pytest.importorskip("pyarrow")
    h = host_for(tmp_path, KEEPER.format(zc=False))
    buf = bytearray(b"\x01\x02\x03")
    assert h.event(_host.INPUT, "keep_value", memoryview(buf), None, None) == _host.RC_NONE
    buf[:] = b"\xff\xff\xff"
    assert h._inst.kept.to_pylist() == [1, 2, 3]


def test_zero_copy_value_escape_is_an_error(tmp_path):
    pytest.importorskip("pyarrow")
    h = host_for(tmp_path, KEEPER.format(zc=True))
    buf = bytearray(b"\x01\x02\x03")
    assert h.event(_host.INPUT, "read", memoryview(buf), None, None) == _host.RC_EXCEPTION  # kept is None
    assert h.event(_host.INPUT, "keep_event", memoryview(buf), None, None) == _host.RC_NONE
    assert h._inst.kept["value"].to_pylist() == [1, 2, 3]
    assert h.event(_host.INPUT, "keep_value", memoryview(buf), None, None) == _host.RC_EXCEPTION
    assert "zero_copy_inputs" in h.error


def test_zero_copy_value_used_in_the_call_is_fine(tmp_path):
    pytest.importorskip("pyarrow")
    h = host_for(
        tmp_path,
        """
        class Operator:
            zero_copy_inputs = True
            def on_event(self, ev, send_output):
                self.total = sum(ev["value"].to_numpy())
        """,
    )
    assert h.event(_host.INPUT, "x", memoryview(b"\x01\x02\x03"), None, None) == _host.RC_NONE
    assert h._inst.total == 6


def test_load_errors(tmp_path):
    h = _host.Host(1, write_operator(tmp_path, "def broken(:\n", "syntax.py"), "n", "o")
    assert h.load() == _host.RC_IMPORT and "SyntaxError" in h.error and "syntax.py" in h.error
    h = _host.Host(1, write_operator(tmp_path, "import no_such_module_for_dora\n", "imp.py"), "n", "o")
    assert h.load() == _host.RC_IMPORT and "No module named 'no_such_module_for_dora'" in h.error
    h = _host.Host(1, write_operator(tmp_path, "X = 1\n", "none.py"), "n", "o")
    assert h.load() == _host.RC_MISSING and "defines no `Operator`" in h.error
    h = _host.Host(1, write_operator(tmp_path, "class Operator:\n    pass\n", "noev.py"), "n", "o")
    assert h.load() == _host.RC_MISSING and "has no method on_event" in h.error
    h = _host.Host(1, write_operator(tmp_path, "class Operator:\n    def __init__(self):\n        raise ValueError('nope')\n    def on_event(self, e, s):\n        pass\n", "init.py"), "n", "o")
    assert h.load() == _host.RC_EXCEPTION and "ValueError: nope" in h.error
    assert not [m for m in sys.modules if m.startswith("dora_operator_init_")]


def test_modules_are_private_per_operator_and_neighbours_import(tmp_path):
    write_operator(tmp_path, "VALUE = 42\n", "helper_mod_for_dora.py")
    body = """
        import helper_mod_for_dora
        COUNT = 0
        class Operator:
            def __init__(self):
                global COUNT
                COUNT += 1
                self.count = COUNT
            def on_event(self, ev, send_output):
                return helper_mod_for_dora.VALUE
        """
    a = host_for(tmp_path, body)
    b = host_for(tmp_path, body)
    assert a._name != b._name and a._inst.count == 1 and b._inst.count == 1
    assert a._mod.helper_mod_for_dora.VALUE == 42
    a.close()
    assert a._name not in sys.modules and b._name in sys.modules
    b.close()


def test_reload_keeps_state_through_on_reload(tmp_path):
    p = write_operator(tmp_path, "class Operator:\n    n = 0\n    def on_event(self, e, s):\n        self.n += 1\n        return 0\n")
    h = _host.Host(1, p, "n", "o")
    assert h.load() == 0
    h.event(_host.INPUT, "x", None, None, None)
    write_operator(
        tmp_path,
        """
        class Operator:
            n = 100
            def on_reload(self, previous):
                self.n += previous.n
            def on_event(self, e, s):
                self.n += 1
                return 0
        """,
    )
    assert h.reload(p) == 0, h.error
    assert h._inst.n == 101
    write_operator(tmp_path, "class Operator(:\n")
    assert h.reload(p) == _host.RC_IMPORT
    assert h._inst.n == 101 and sys.modules[h._name] is h._mod


def test_close_calls_drop_once(tmp_path):
    h = host_for(
        tmp_path,
        """
        import builtins
        class Operator:
            def on_event(self, e, s):
                pass
            def drop(self):
                builtins.dora_dropped = getattr(builtins, "dora_dropped", 0) + 1
            def __del__(self):
                builtins.dora_deleted = True
        """,
    )
    import builtins

    assert h.close() == 0
    gc.collect()
    assert builtins.dora_dropped == 1 and builtins.dora_deleted
    assert h.close() == 0 and builtins.dora_dropped == 1
    del builtins.dora_dropped, builtins.dora_deleted


def test_router_sends_operator_prints_to_go(monkeypatch):
    writes = []
    monkeypatch.setattr(_host, "_native_write", lambda h, fd, b: writes.append((h, fd, b)))
    fallback = []

    class Sink:
        encoding = "utf-8"

        def write(self, s):
            fallback.append(s)
            return len(s)

    r = _host._Router(Sink(), 1)
    h = _host.Host(3, "x", "n", "o", routes=1)
    monkeypatch.setattr(_host._tls, "host", h, raising=False)
    r.write("héllo\n")
    monkeypatch.setattr(_host._tls, "host", None)
    r.write("plain\n")
    assert writes == [(3, 1, "héllo\n".encode())] and fallback == ["plain\n"]


def test_uint8_arrays_travel_as_raw_bytes(tmp_path, sent):
    pa = pytest.importorskip("pyarrow")
    h = host_for(tmp_path, "class Operator:\n    def on_event(self, ev, send):\n        pass\n")
    h.send_output("u8", pa.array([1, 2, 3, 4], type=pa.uint8()).slice(1, 2))
    h.send_output("u8_nulls", pa.array([1, None], type=pa.uint8()))
    got = {s[1]: s for s in sent}
    assert got["u8"][2:] == (b"\x02\x03", None)
    assert _wire.decode(got["u8_nulls"][3])[2][0] == "C"


def test_operator_options_are_read(tmp_path):
    h = host_for(
        tmp_path,
        "class Operator:\n    any_thread = True\n    zero_copy_inputs = True\n    def on_event(self, ev, send):\n        pass\n",
    )
    assert h._any_thread == 1 and h._zc
    h = host_for(tmp_path, "class Operator:\n    def on_event(self, ev, send):\n        pass\n", "plain.py")
    assert h._any_thread == 0 and not h._zc
