"""dora.Node against a fake daemon: the test holds the daemon's ends of the
two socket pairs and speaks dora._protocol on them (its bytes are pinned to
Go's by test_vectors.py). Frames the node will read are written before the
node reads them, so the tests need no threads and no timing."""

import gc
import json
import os
import socket
import time

import numpy as np
import pyarrow as pa
import pytest

from dora import Node, _host, _wire
from dora import _protocol as p
from dora import node as node_mod


def open_fds():
    return set(os.listdir("/proc/self/fd"))


class FakeDaemon:
    def __init__(self, monkeypatch, inputs=("in",), outputs=("out",), shm_threshold=4096, reply=""):
        c_d, c_n = socket.socketpair()
        e_d, e_n = socket.socketpair()
        self.ctrl, self.events = p.Conn(c_d), p.Conn(e_d)
        cfg = {
            "version": 1,
            "dataflow_id": "df-1",
            "node_id": "py",
            "control_fd": c_n.detach(),
            "events_fd": e_n.detach(),
            "inputs": [{"id": i, "source": "src/" + i, "queue_size": 10} for i in inputs],
            "outputs": list(outputs),
            "shm_threshold": shm_threshold,
            "node": {"id": "py", "path": "node.py"},
        }
        self.cfg = cfg
        monkeypatch.setenv("DORA_NODE_CONFIG", json.dumps(cfg))
        if reply is not None:
            self.ctrl.write_frame(p.encode(p.RegisterReply(reply == "", reply)))
        self.regions = []

    def read_ctrl(self, timeout=2.0):
        got = self.ctrl.read_frame(timeout)
        assert got is not None, "the node wrote nothing on its control socket"
        frame, fds = got
        return p.decode(frame), fds

    def ctrl_idle(self):
        return self.ctrl.read_frame(0) is None

    def push(self, *events, fds=()):
        self.events.write_frame(p.encode(p.Events(tuple(events))), list(fds))

    def next_events_requested(self):
        n = 0
        while True:
            try:
                got = self.events.read_frame(0)
            except EOFError:  # the node closed
                return n
            if got is None:
                return n
            assert p.decode(got[0]) == p.NextEvents(node_mod.MAX_BATCH)
            n += 1

    def region(self, content, size=65536):
        r = p.Region("fake-daemon", size)
        r.write(content)
        self.regions.append(r)
        return r

    def close_node_ends(self):
        """For tests where Node() refused to start before adopting them."""
        os.close(self.cfg["control_fd"])
        os.close(self.cfg["events_fd"])

    def close(self):
        for r in self.regions:
            r.close()
        self.ctrl.close()
        self.events.close()


@pytest.fixture
def daemon(monkeypatch):
    before = open_fds()
    d = FakeDaemon(monkeypatch)
    yield d
    d.close()
    gc.collect()
    leaked = open_fds() - before
    assert not leaked, "descriptors left open: %s" % sorted(leaked)


def md(ts=1, params=None, otel="", typ=None):
    return p.Metadata(ts, otel, params or {}, typ)


# -- starting


def test_without_dora_node_config_it_says_what_to_do(monkeypatch):
    monkeypatch.delenv("DORA_NODE_CONFIG", raising=False)
    with pytest.raises(node_mod.DoraNodeError, match=r"DORA_NODE_CONFIG is not set.*dora run dataflow.yml"):
        Node()


@pytest.mark.parametrize(
    "cfg,match",
    [
        ("{not json", "not valid JSON"),
        ('{"version": 2}', "protocol version 2"),
        ('{"version": 1, "node_id": "x", "control_fd": 987, "events_fd": 988}', "descriptor 987 from the daemon is not open"),
    ],
)
def test_bad_configurations_are_explained(monkeypatch, cfg, match):
    monkeypatch.setenv("DORA_NODE_CONFIG", cfg)
    with pytest.raises(node_mod.DoraNodeError, match=match):
        Node()


def test_register_waits_for_the_start_barrier(daemon):
    with Node() as n:
        msg, _ = daemon.read_ctrl()
        assert msg == p.Register(1, "df-1", "py")
        assert (n.id, n.dataflow_id) == ("py", "df-1")
        assert n.dataflow_descriptor() == {"id": "py", "path": "node.py"}
        for fd in (daemon.cfg["control_fd"], daemon.cfg["events_fd"]):
            assert not os.get_inheritable(fd), "children must not inherit the daemon sockets"


def test_a_refused_registration_raises_the_daemons_reason(monkeypatch):
    d = FakeDaemon(monkeypatch, reply='node "x" failed before the dataflow started')
    with pytest.raises(node_mod.DoraNodeError, match='node "x" failed before'):
        Node()
    d.close()


def test_a_daemon_gone_before_the_start_is_an_error(monkeypatch):
    d = FakeDaemon(monkeypatch, reply=None)
    d.ctrl.shutdown()
    with pytest.raises(node_mod.DoraNodeError, match="closed the connection before the dataflow started"):
        Node()
    d.close()


def test_node_cannot_run_inside_an_operator(monkeypatch, daemon):
    monkeypatch.setattr(_host, "_native_send", lambda *a: None)
    with pytest.raises(node_mod.DoraNodeError, match="inside a Python operator"):
        Node()
    daemon.close_node_ends()


def test_dynamic_nodes_are_refused(daemon):
    with pytest.raises(node_mod.DoraNodeError, match="dynamic nodes"):
        Node("some-id")
    daemon.close_node_ends()


# -- receiving


def test_events_have_the_operator_event_shape(daemon):
    daemon.push(
        p.Input("in", md(5, {"k": 1, "l": p.IntList([1, 2])}, otel="trace"), b"\x01\x02\x03"),
        p.InputClosed("in"),
        p.Error("bad thing"),
        p.Stop(),
    )
    with Node() as n:
        ev = n.next()
        assert ev["type"] == "INPUT" and ev["id"] == "in"
        assert ev["data"] == b"\x01\x02\x03"
        assert ev["value"].type == pa.uint8() and ev["value"].to_pylist() == [1, 2, 3]
        assert ev["metadata"] == {"k": 1, "l": [1, 2], "open_telemetry_context": "trace"}
        assert type(ev["metadata"]["l"]) is list
        assert ev.timestamp == 5 and not ev.in_shared_memory
        # The same input as an operator sees it (dora._host.Event).
        op = _host.Event(_host.INPUT, "in", memoryview(b"\x01\x02\x03"), _wire.encode({"k": 1, "l": [1, 2], "open_telemetry_context": "trace"}, None), None)
        assert set(ev) == set(op)
        assert ev["metadata"] == op["metadata"] and ev["data"] == op["data"]
        assert ev["value"].equals(op["value"])
        assert n.next() == {"type": "INPUT_CLOSED", "id": "in"}
        err = n.next()
        assert dict(err) == {"type": "ERROR", "error": "bad thing"}
        assert dict(n.next()) == {"type": "STOP"}
        assert n.next() is None and n.next() is None
        assert daemon.next_events_requested() == 1


def test_for_loop_ends_after_stop_and_asks_only_on_demand(daemon):
    daemon.push(p.Input("in", md(), b"a"))
    daemon.push(p.Input("in", md(), b"b"), p.Stop())
    got = []
    with Node() as n:
        for ev in n:
            got.append(ev["type"] + ":" + (ev["data"].decode() if ev["type"] == "INPUT" else ""))
            if len(got) == 1:
                assert daemon.next_events_requested() == 1
    assert got == ["INPUT:a", "INPUT:b", "STOP:"]
    assert daemon.next_events_requested() == 1


def test_typed_inputs_become_arrays_of_that_type(daemon):
    arr = pa.array([1.5, None, 3.0], type=pa.float32())
    from dora import _arrow

    data, info = _arrow.array_to_layout(arr)
    daemon.push(p.Input("in", md(typ=info), bytes(data)), p.Input("in", md(), None))
    with Node() as n:
        ev = n.next()
        assert ev["value"].type == pa.float32() and ev["value"].to_pylist() == [1.5, None, 3.0]
        empty = n.next()
        assert empty["data"] == b"" and len(empty["value"]) == 0


def test_next_with_a_timeout_keeps_the_request_outstanding(daemon):
    with Node() as n:
        assert n.next(timeout=0.01) is None
        assert n.next(timeout=0) is None
        daemon.push(p.Input("in", md(), b"late"))
        assert n.next(timeout=5)["data"] == b"late"
        assert daemon.next_events_requested() == 1


def test_a_daemon_that_vanishes_without_stop_is_an_error(daemon):
    daemon.events.shutdown()
    with Node() as n:
        with pytest.raises(node_mod.DoraNodeError, match="without a STOP event"):
            n.next()
        with pytest.raises(node_mod.DoraNodeError):
            n.next()


def test_a_malformed_events_frame_is_an_error(daemon):
    daemon.events.write_frame(p.encode(p.Released((1,))))
    with Node() as n:
        with pytest.raises(node_mod.DoraNodeError, match="answered NEXT_EVENTS with RELEASED"):
            n.next()


# -- zero-copy receive


def mapped(addr):
    """Whether addr lies in a read-only shared mapping of this process."""
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= addr < hi:
                return perms
    return None


def test_shared_memory_inputs_are_views_released_when_collected(daemon):
    payload = np.arange(10000, dtype=np.uint16).tobytes()
    r = daemon.region(payload)
    info = p.ArrayInfo("S", 10000, 0, 0, (None, (0, 20000)))
    daemon.push(p.Input("in", md(typ=info), p.Shm(True, 42, r.size, 20000)), fds=[r.fd])
    with Node() as n:
        daemon.read_ctrl()  # REGISTER
        ev = n.next()
        assert ev.in_shared_memory
        value = ev["value"]
        assert value.type == pa.uint16() and value[9999].as_py() == 9999
        addr = value.buffers()[1].address
        assert mapped(addr) == "r--s"
        # A view, not a copy: the sender's writes show through.
        r.mem[0:2] = b"\xff\xff"
        assert value[0].as_py() == 0xFFFF
        view = value.to_numpy(zero_copy_only=True)
        del ev, value
        gc.collect()
        assert daemon.ctrl_idle(), "released while a numpy view still reads the region"
        assert view[1] == 1
        del view
        gc.collect()
        msg, _ = daemon.read_ctrl()
        assert msg == p.Release((42,))
        # The mapping stays for later messages in the same region...
        assert mapped(addr) == "r--s"
        daemon.push(p.Input("in", md(), p.Shm(False, 42, r.size, 4)), p.Unmap(42))
        ev = n.next()
        assert ev["data"] == b"\xff\xff\x01\x00"
        # ...and goes after UNMAP, once the last input in it is released.
        assert mapped(addr) == "r--s"
        del ev
        assert daemon.read_ctrl()[0] == p.Release((42,))
        assert mapped(addr) is None


def test_data_is_a_copy_that_outlives_the_region(daemon):
    r = daemon.region(b"abcdefgh")
    daemon.push(p.Input("in", md(), p.Shm(True, 1, r.size, 8)), p.Unmap(1), fds=[r.fd])
    with Node() as n:
        daemon.read_ctrl()
        ev = n.next()
        data = ev["data"]
        del ev
        assert daemon.read_ctrl()[0] == p.Release((1,))
        assert data == b"abcdefgh"


def test_close_keeps_referenced_data_readable(daemon):
    r = daemon.region(b"still here")
    daemon.push(p.Input("in", md(), p.Shm(True, 1, r.size, 10)), fds=[r.fd])
    n = Node()
    value = n.next()["value"]
    n.close()
    assert bytes(value.buffers()[1]) == b"still here"
    addr = value.buffers()[1].address
    del value
    gc.collect()
    assert mapped(addr) is None


def test_an_unknown_region_is_a_protocol_error(daemon):
    daemon.push(p.Input("in", md(), p.Shm(False, 9, 65536, 10)))
    with Node() as n:
        with pytest.raises(node_mod.DoraNodeError, match="unknown shared-memory region 9"):
            n.next()


# -- sending


def test_send_inline_with_metadata(daemon):
    with Node() as n:
        daemon.read_ctrl()
        t0 = time.time_ns()
        n.send_output("out", b"12345678", {"k": 1, "names": ["a"], "open_telemetry_context": "t"})
        msg, fds = daemon.read_ctrl()
        assert fds == []
        assert msg.output_id == "out" and bytes(msg.data) == b"12345678"
        assert msg.metadata.parameters == {"k": 1, "names": ["a"]}
        assert msg.metadata.open_telemetry_context == "t" and msg.metadata.type is None
        assert t0 <= msg.metadata.timestamp <= time.time_ns()
        n.send_output("out", b"")
        assert daemon.read_ctrl()[0].data is None
        with pytest.raises(ValueError, match=r"output 'nope' is not declared in the dataflow \(declared: out\)"):
            n.send_output("nope", b"x")
        with pytest.raises(TypeError, match="data is a str"):
            n.send_output("out", "text")


@pytest.mark.parametrize(
    "data,fmt,values",
    [
        (pa.array([1.5, 2.5], type=pa.float32()), "f", [1.5, 2.5]),
        (np.array([[1, 2], [3, 4]], dtype=np.int16), "s", [1, 2, 3, 4]),
        ([1, 2, 3], "l", [1, 2, 3]),
        (pa.array(["a", None, "ccc"]), "u", ["a", None, "ccc"]),
        (np.arange(4, dtype=np.uint8), None, [0, 1, 2, 3]),  # uint8 travels as raw bytes
        (bytearray(b"\x05\x06"), None, [5, 6]),
    ],
)
def test_send_keeps_the_arrow_type(daemon, data, fmt, values):
    with Node() as n:
        daemon.read_ctrl()
        n.send_output("out", data)
        msg, _ = daemon.read_ctrl()
        t = msg.metadata.type
        assert (t.format if t else None) == fmt
        # Same bytes and layout as an operator sends for the same value.
        op_payload, op_layout = _host._payload(data)
        assert bytes(msg.data or b"") == bytes(memoryview(op_payload).cast("B"))
        assert (t is None) == (op_layout is None)
        from dora import _arrow

        buf = pa.py_buffer(bytes(msg.data or b""))
        got = _arrow.raw_array(buf) if t is None else _arrow.layout_to_array(t, buf)
        assert got.to_pylist() == values


def test_send_large_payloads_through_a_reused_region_pool(daemon):
    payload = np.random.default_rng(1).integers(0, 255, 100_000, dtype=np.uint8)
    with Node() as n:
        daemon.read_ctrl()
        n.send_output("out", payload)
        msg, fds = daemon.read_ctrl()
        assert msg.data == p.Shm(True, 1, 131072, 100_000) and len(fds) == 1
        assert os.pread(fds[0], 100_000, 0) == payload.tobytes()
        # Not released yet: a second message needs another region.
        n.send_output("out", payload[::-1].copy())
        msg2, fds2 = daemon.read_ctrl()
        assert msg2.data.region == 2 and msg2.data.fd_attached and len(fds2) == 1
        assert os.pread(fds2[0], 4, 0) == payload[::-1][:4].tobytes()
        # Region 1 comes back: the next message is written into it again,
        # without passing its descriptor again.
        daemon.ctrl.write_frame(p.encode(p.Released((1,))))
        n.send_output("out", np.zeros(70_000, dtype=np.uint8))
        msg3, fds3 = daemon.read_ctrl()
        assert msg3.data == p.Shm(False, 1, 131072, 70_000) and fds3 == []
        assert os.pread(fds[0], 8, 0) == bytes(8)
        for fd in fds + fds2:
            os.close(fd)


def test_shm_threshold_from_the_config(monkeypatch):
    d = FakeDaemon(monkeypatch, shm_threshold=16)
    with Node() as n:
        d.read_ctrl()
        n.send_output("out", bytes(15))
        assert bytes(d.read_ctrl()[0].data) == bytes(15)  # inline
        n.send_output("out", bytes(16))
        msg, fds = d.read_ctrl()
        assert msg.data.len == 16 and msg.data.region_size == p.MIN_REGION_SIZE
        os.close(fds[0])
    d.close()


def test_the_pool_waits_for_a_region_before_making_more(daemon):
    with Node() as n:
        daemon.read_ctrl()
        fds = []
        for _ in range(p.MAX_IN_FLIGHT):
            n.send_output("out", bytes(5000))
            fds += daemon.read_ctrl()[1]
        # Every region is lent: the next send waits, and region 3 comes
        # back during the wait (the daemon writes RELEASED as it starts).
        pool = n._link.pool
        wait, waits = pool._wait, []

        def released_while_waiting(timeout):
            waits.append(timeout)
            daemon.ctrl.write_frame(p.encode(p.Released((3,))))
            wait(timeout)

        pool._wait = released_while_waiting
        n.send_output("out", bytes(5000))
        msg, more = daemon.read_ctrl()
        assert len(waits) == 1 and waits[0] <= p.MAX_WAIT + 1e-6
        assert msg.data == p.Shm(False, 3, p.MIN_REGION_SIZE, 5000) and more == []
        for fd in fds:
            os.close(fd)


def test_regions_beyond_the_idle_bound_are_dropped_from_the_send_path(daemon):
    with Node() as n:
        daemon.read_ctrl()
        fds, total = [], p.MAX_FREE + 2
        for _ in range(total):  # nothing released: past 8 in flight, bounded waits
            n.send_output("out", bytes(5000))
            fds += daemon.read_ctrl()[1]
        daemon.ctrl.write_frame(p.encode(p.Released(tuple(range(1, total + 1)))))
        n.send_output("out", bytes(5000))
        drop, _ = daemon.read_ctrl()
        assert drop == p.DropRegions((p.MAX_FREE + 1, p.MAX_FREE + 2))
        msg, _ = daemon.read_ctrl()
        assert msg.data.region == 1 and not msg.data.fd_attached
        for fd in fds:
            os.close(fd)


def test_close_outputs_and_stop_dataflow(daemon):
    with Node() as n:
        daemon.read_ctrl()
        n.close_outputs("out")
        assert daemon.read_ctrl()[0] == p.CloseOutputs(("out",))
        n.stop_dataflow("enough")
        assert daemon.read_ctrl()[0] == p.StopDataflow("enough")
        with pytest.raises(ValueError):
            n.close_outputs("other")


# -- closing


def test_close_reads_what_the_daemon_wrote_so_it_sees_a_clean_eof(daemon):
    """Closing a unix socket with unread data makes the peer's read fail
    with ECONNRESET, which the daemon reports as a protocol error."""
    n = Node()
    daemon.read_ctrl()
    n.send_output("out", bytes(5000))
    fds = daemon.read_ctrl()[1]
    daemon.ctrl.write_frame(p.encode(p.Released((1,))))
    daemon.ctrl.write_frame(p.encode(p.Released((1,))))
    n.close()
    with pytest.raises(EOFError):
        daemon.ctrl.read_frame(2)
    with pytest.raises(EOFError):
        daemon.events.read_frame(2)
    with pytest.raises(node_mod.DoraNodeError, match="closed"):
        n.send_output("out", b"x")
    with pytest.raises(node_mod.DoraNodeError, match="closed"):
        n.next()
    n.close()
    os.close(fds[0])


def test_a_forgotten_node_disconnects_when_collected(daemon):
    n = Node()
    daemon.read_ctrl()
    del n
    gc.collect()
    with pytest.raises(EOFError):
        daemon.ctrl.read_frame(2)


def test_a_full_session_leaves_no_descriptor_or_mapping(daemon):
    r = daemon.region(b"x" * 5000)
    daemon.push(p.Input("in", md(), p.Shm(True, 7, r.size, 5000)), p.Input("in", md(), b"small"), fds=[r.fd])
    daemon.push(p.Unmap(7), p.Stop())
    addrs = []
    with Node() as n:
        for ev in n:
            if ev["type"] == "INPUT":
                addrs.append(ev["value"].buffers()[1].address)
                n.send_output("out", ev["value"])
    gc.collect()
    assert mapped(addrs[0]) is None
    # daemon fixture checks descriptors


# -- concurrency


def test_hammer_send_and_release_from_many_threads(monkeypatch):
    """Senders on several threads, inputs dropped on other threads and by
    the cyclic GC, against a daemon that answers RELEASED from the loop
    that reads the control socket (as the Go daemon does). Nothing may
    deadlock, and every shared-memory input must be released."""
    import queue
    import random
    import threading

    d = FakeDaemon(monkeypatch, shm_threshold=4096)
    n_inputs, n_senders, n_sends = 300, 3, 60
    stats = {"released": [], "shm_sends": 0, "inline_sends": 0, "dropped": []}

    def control():
        while True:
            try:
                msg, fds = d.read_ctrl(timeout=None)
            except (EOFError, OSError):
                return
            for fd in fds:
                os.close(fd)
            if isinstance(msg, p.SendOutput):
                if isinstance(msg.data, p.Shm):
                    stats["shm_sends"] += 1
                    d.ctrl.write_frame(p.encode(p.Released((msg.data.region,))))
                else:
                    stats["inline_sends"] += 1
            elif isinstance(msg, p.Release):
                stats["released"].extend(msg.regions)
            elif isinstance(msg, p.DropRegions):
                stats["dropped"].extend(msg.regions)

    def events():
        sent, key, pending_unmap = 0, 100, []
        rng = random.Random(1)
        while True:
            try:
                got = d.events.read_frame()
            except (EOFError, OSError):
                return
            if got is None:
                return
            batch, fds, regions = list(pending_unmap), [], []
            pending_unmap = []
            for _ in range(rng.randint(1, 8)):
                if sent == n_inputs:
                    batch.append(p.Stop())
                    break
                if sent % 2:
                    key += 1
                    r = p.Region("hammer", 65536)
                    r.write(struct_i(sent) * 1000)
                    regions.append(r)
                    fds.append(r.fd)
                    batch.append(p.Input("in", md(sent), p.Shm(True, key, 65536, 8000)))
                    pending_unmap.append(p.Unmap(key))
                else:
                    batch.append(p.Input("in", md(sent), struct_i(sent)))
                sent += 1
            d.events.write_frame(p.encode(p.Events(tuple(batch))), fds)
            for r in regions:
                r.close()  # the node has its own mapping now

    threads = [threading.Thread(target=control), threading.Thread(target=events)]
    for t in threads:
        t.start()
    node = Node()
    work = queue.Queue()
    errors = []

    def sender(seed):
        rng = random.Random(seed)
        try:
            for i in range(n_sends):
                node.send_output("out", bytes(rng.choice((8, 3000, 5000, 70_000, 300_000))))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def consumer():
        keep = []
        while True:
            ev = work.get()
            if ev is None:
                return
            try:
                v = ev["value"]
                assert v.to_numpy()[:8].tobytes() == struct_i(ev.timestamp)
            except Exception as e:  # pragma: no cover
                errors.append(e)
            if ev.timestamp % 7 == 0:
                cycle = [ev, v]
                cycle.append(cycle)  # only the cyclic GC frees these
            keep.append(v)
            if len(keep) > 3:
                keep.pop(random.randrange(len(keep)))
            del ev, v

    senders = [threading.Thread(target=sender, args=(i,)) for i in range(n_senders)]
    consumers = [threading.Thread(target=consumer) for _ in range(2)]
    for t in senders + consumers:
        t.start()
    received = 0
    for ev in node:
        if ev["type"] == "INPUT":
            received += 1
            work.put(ev)
        del ev
    for _ in consumers:
        work.put(None)
    for t in senders + consumers:
        t.join(30)
        assert not t.is_alive(), "deadlock"
    gc.collect()
    node.close()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    d.close()
    assert not errors, errors
    assert received == n_inputs
    assert sorted(stats["released"]) == list(range(101, 101 + n_inputs // 2))
    assert stats["shm_sends"] + stats["inline_sends"] == n_senders * n_sends


def struct_i(i):
    return int(i).to_bytes(8, "little")
