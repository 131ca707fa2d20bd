"""The Python node API: a program started by dora as a node of a dataflow.

    from dora import Node

    node = Node()                      # waits until every node has started
    for event in node:                 # ends after the STOP event
        if event["type"] == "INPUT":
            node.send_output("out", event["value"], event["metadata"])

The node speaks ``abi/PROTOCOL.md`` with the daemon over the two sockets it
inherits (see :mod:`dora._protocol`); nothing here is compiled.

Events
------
``node.next()`` returns a read-only mapping, shaped like the ``dora_event``
Python operators get (``dora._host``):

- ``type``: ``"INPUT"``, ``"INPUT_CLOSED"``, ``"STOP"`` or ``"ERROR"``;
- ``id``: the input id (INPUT, INPUT_CLOSED);
- ``value``: the data as a pyarrow array of the type the sender sent (raw
  bytes read as ``uint8``); absent when pyarrow is not installed;
- ``data``: the data as ``bytes`` (a copy, made when first asked for);
- ``metadata``: the sender's parameters, plus ``open_telemetry_context``
  when it is not empty;
- ``error``: the message of an ERROR event.

Two attributes are not mapping keys: ``event.timestamp`` (the sender's
clock when it sent, ns since the Unix epoch) and ``event.in_shared_memory``.

Lifetime of received data
-------------------------
Data of 4 KiB and more (``shm_threshold``) arrives in a shared-memory
region the sender wrote once; ``event["value"]`` is a zero-copy view of
that mapping (``pa.foreign_buffer`` whose base is a small lease object).
The region is handed back (RELEASE) when the last Python object that can
reach the data is garbage collected: the event, the array, its buffers,
slices, numpy views (``value.to_numpy(zero_copy_only=True)``). Nothing has
to be released by hand, and memory stays valid as long as it is reachable.
A region that is kept stays lent, and its sender makes new ones (after a
bounded wait): copy what you keep for long (``value.to_numpy().copy()``).
In ``for event in node:`` the previous event is still bound to ``event``
while ``next()`` waits for the following one; ``del event`` at the end of
the loop body hands its region back before the wait. Small data travels
inline in the events frame and is viewed in place there. ``event["data"]``
is always a copy, as for operators.

Sending
-------
``send_output(output_id, data, metadata=None)`` takes bytes-like objects,
pyarrow arrays, numpy arrays and lists, converted exactly as an operator's
``send_output`` does (``dora._host._payload``): the Arrow type travels in
the message's ``array_info``, so a Go (or any) receiver gets the same type.
Data of ``shm_threshold`` bytes and more is copied once into a shared-memory
region of the node's pool, which receivers map; regions come back when
every receiver released them.

Threads: sending is safe from any thread; receive from one thread at a time.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import os
import sys
import threading
import time
import weakref
from typing import Any, Deque, Dict, Iterator, List, Optional

from . import _protocol as proto
from ._event import EventMapping
from ._event import optional_pyarrow as _pyarrow
from ._protocol import ENV_NODE_CONFIG

__all__ = ["Node", "Event"]

#: How many events one NEXT_EVENTS asks for (as the Go node API). The node
#: only asks when its caller wants an event, so messages wait (and are
#: dropped oldest-first) in the daemon's per-input queues.
MAX_BATCH = 256

INPUT, INPUT_CLOSED, STOP, ERROR = "INPUT", "INPUT_CLOSED", "STOP", "ERROR"
_OTEL_KEY = "open_telemetry_context"

class DoraNodeError(RuntimeError):
    """The node cannot talk to its daemon (not started by dora, daemon
    gone, protocol violation)."""


# --------------------------------------------------------------------------
# Events


class Event(EventMapping):
    """One event: a read-only mapping whose ``value``, ``data`` and
    ``metadata`` are built on first access. See the module documentation."""

    __slots__ = ("_type", "_id", "_md", "_payload", "_lease", "_error", "_cache")

    def __init__(
        self,
        type_: str,
        id_: Optional[str] = None,
        md: Optional[proto.Metadata] = None,
        payload: Any = None,
        lease: Optional["_Lease"] = None,
        error: Optional[str] = None,
    ) -> None:
        self._type = type_
        self._id = id_
        self._md = md
        # None (no data), a memoryview (inline), or the shm address (int)
        # of a lease's data.
        self._payload = payload
        self._lease = lease
        self._error = error
        self._cache: Optional[dict] = None

    @property
    def timestamp(self) -> int:
        """The sender's wall clock when it sent, ns since the Unix epoch
        (0 for events other than INPUT)."""
        return self._md.timestamp if self._md is not None else 0

    @property
    def in_shared_memory(self) -> bool:
        """Whether the data is a view of a shared-memory region."""
        return self._lease is not None

    def _type_name(self) -> str:
        return self._type

    def __getitem__(self, key: str) -> Any:
        if key == "type":
            return self._type
        t = self._type
        if key == "id" and (t == INPUT or t == INPUT_CLOSED):
            return self._id
        if key == "error" and t == ERROR:
            return self._error
        if t == INPUT:
            c = self._cache
            if c is None:
                c = self._cache = {}
            v = c.get(key)
            if v is not None:
                return v
            if key == "value":
                v = c["value"] = self._value()
                return v
            if key == "data":
                v = c["data"] = self._bytes()
                return v
            if key == "metadata":
                v = c["metadata"] = _user_metadata(self._md)
                return v
        raise KeyError(key)

    def _bytes(self) -> bytes:
        p = self._payload
        if p is None:
            return b""
        if self._lease is not None:
            return ctypes.string_at(p, self._lease.len)
        return bytes(p)

    def _buffer(self) -> Any:
        pa = _pyarrow()
        p = self._payload
        if p is None:
            return pa.py_buffer(b"")
        if self._lease is not None:
            # The buffer's base is the lease: the region stays mapped and
            # lent while anything derived from this buffer lives.
            return pa.foreign_buffer(p, self._lease.len, base=self._lease)
        return pa.py_buffer(p)

    def _value(self) -> Any:
        pa = _pyarrow()
        if not pa:
            raise KeyError("value: pyarrow is not installed in this Python; use event['data'] (bytes) or pip install pyarrow")
        from . import _arrow

        buf = self._buffer()
        info = self._md.type if self._md is not None else None
        if info is None:
            return _arrow.raw_array(buf)
        return _arrow.layout_to_array(info, buf)


def _user_metadata(md: Optional[proto.Metadata]) -> dict:
    """The metadata dict operators get (dora._host): parameters, and the
    trace context when there is one."""
    if md is None:
        return {}
    v = {k: (list(p) if isinstance(p, list) else p) for k, p in md.parameters.items()}
    if md.open_telemetry_context:
        v[_OTEL_KEY] = md.open_telemetry_context
    return v


class _Lease:
    """One delivery of a shared-memory region. Its finalizer queues the
    RELEASE: it runs when the last event, array, buffer or view reaching
    the data is collected."""

    __slots__ = ("link", "key", "len", "__weakref__")

    def __init__(self, link: "_Link", key: int, n: int) -> None:
        self.link = link
        self.key = key
        self.len = n

    def __del__(self) -> None:
        try:
            self.link.release_later(self.key)
        except Exception:  # interpreter shutdown
            pass


class _Mapping:
    __slots__ = ("addr", "size", "refs", "unmapped")

    def __init__(self, addr: int, size: int) -> None:
        self.addr = addr
        self.size = size
        self.refs = 0
        self.unmapped = False


# --------------------------------------------------------------------------
# The control socket and the state finalizers touch


class _Link:
    """The control socket and everything a lease finalizer may touch.

    One lock guards control-socket I/O, the receiver's mappings and the
    sender pool's bookkeeping of dropped regions. Finalizers only append to
    ``pending`` and flush it when the lock is free (they never wait for
    it: a finalizer can run in the middle of our own code holding it);
    whoever holds the lock flushes ``pending`` before letting it go.

    The daemon writes RELEASED from the loop that reads this socket, so a
    node that blocks in a write while RELEASED frames wait unread could
    deadlock with it (see apis/go/node/node.go, whose reader goroutine
    never writes). There is no reader thread here: the socket is read
    without blocking before every send and while the pool waits for a
    region, so RELEASED frames never pile up (at most one per lent region).
    """

    def __init__(self, node_id: str, ctrl: proto.Conn) -> None:
        self.node_id = node_id
        self.ctrl = ctrl
        self.lock = threading.Lock()
        self.pending: Deque[int] = collections.deque()
        self.maps: Dict[int, _Mapping] = {}
        self.pool = proto.SenderPool("dora-" + node_id, wait=self.await_released)
        self.dropped: List[int] = []
        self.closed = False
        self.ctrl_gone = False

    # -- releases

    def release_later(self, key: int) -> None:
        self.pending.append(key)
        self.unlocked()

    def flush(self) -> None:
        if self.pending:
            with self.locked():
                pass

    @contextlib.contextmanager
    def locked(self, timeout: float = -1) -> Iterator[bool]:
        """Hold the lock (True) or time out (False); pending releases are
        flushed before it goes, and those queued meanwhile right after."""
        got = self.lock.acquire(timeout=timeout)
        try:
            yield got
        finally:
            if got:
                try:
                    self.flush_locked()
                finally:
                    self.lock.release()
                    self.unlocked()

    def unlocked(self) -> None:
        """Flush pending releases if nobody holds the lock. A finalizer that
        found the lock taken left its key in ``pending`` before the holder
        let go, so the holder, calling this after letting go, sees it."""
        while self.pending and self.lock.acquire(False):
            try:
                self.flush_locked()
            finally:
                self.lock.release()

    def flush_locked(self) -> None:
        keys: List[int] = []
        pending = self.pending
        while pending:
            key = pending.popleft()
            m = self.maps.get(key)
            if m is not None:
                m.refs -= 1
                if m.refs <= 0 and m.unmapped:
                    del self.maps[key]
                    proto.unmap(m.addr, m.size)
            keys.append(key)
        if keys and not self.closed and not self.ctrl_gone:
            # Written without reading RELEASED first: this may run in a
            # finalizer inside the pool's own critical section, which
            # reading RELEASED (pool.put) would re-enter. The frames that
            # can be waiting are few (one per lent region), so this small
            # write cannot be stuck behind them.
            try:
                self.ctrl.write_frame_locked(proto._regions_frame(proto.RELEASE, keys))
            except OSError:
                self.ctrl_gone = True

    def unmap_locked(self, key: int) -> None:
        m = self.maps.get(key)
        if m is None:
            return
        m.unmapped = True
        if m.refs <= 0:
            del self.maps[key]
            proto.unmap(m.addr, m.size)

    # -- control socket

    def write_locked(self, frame: Any, fds: Any = ()) -> None:
        """Write a control frame; RELEASED frames already here are read
        first, and retired regions announced."""
        if self.pool.has_lent():
            self.drain_locked(0)
        if self.dropped:
            ids, self.dropped = self.dropped, []
            self.ctrl.write_frame_locked(proto._regions_frame(proto.DROP_REGIONS, ids))
        self.ctrl.write_frame_locked(frame, fds)

    def drain_locked(self, timeout: float) -> bool:
        """Read control frames for up to ``timeout`` seconds, until one
        RELEASED was handled, then whatever else is already there. True if
        a region came back."""
        if self.ctrl_gone:
            return False
        got = False
        deadline = time.monotonic() + timeout
        while True:
            left = 0.0 if got else max(0.0, deadline - time.monotonic())
            try:
                f = self.ctrl.read_frame(left)
            except (EOFError, OSError, proto.MalformedFrame):
                self.ctrl_gone = True
                return got
            if f is None:
                return got
            frame, fds = f
            for fd in fds:
                proto._close_quietly(fd)
            if frame[4] != proto.RELEASED:
                continue
            try:
                msg = proto.decode(frame)
            except proto.MalformedFrame:
                continue
            for rid in msg.regions:
                dropped = self.pool.put(rid)
                if dropped:
                    self.dropped.append(dropped)
            got = True

    def await_released(self, timeout: float) -> None:
        """The pool's bounded wait: read RELEASED for up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.locked(max(timeout, 0)) as got:
            if got:
                self.drain_locked(max(0.0, deadline - time.monotonic()))


# --------------------------------------------------------------------------
# The node


def _disconnect(link: _Link, events: proto.Conn, recv_lock: threading.Lock) -> None:
    """Close both sockets cleanly. Shutting down first stops the daemon
    from writing more; reading what it already wrote before closing matters
    because closing a unix socket with unread data makes the peer's read
    fail with ECONNRESET (the daemon would report a protocol error)."""
    link.ctrl.shutdown()
    events.shutdown()
    with link.lock:
        link.closed = True
        _drain_to_eof(link.ctrl)
        for key in list(link.maps):
            link.unmap_locked(key)
        link.ctrl.close()
    with recv_lock:  # a next() woken by the shutdown returns first
        _drain_to_eof(events)
        events.close()
    link.pool.close()


def _drain_to_eof(conn: proto.Conn) -> None:
    for _ in range(1 << 16):
        try:
            got = conn.read_frame(0)
        except (EOFError, OSError, proto.MalformedFrame):
            return
        if got is None:
            return
        for fd in got[1]:
            proto._close_quietly(fd)


def _to_payload(data: Any) -> Any:
    """``(bytes-like, ArrayInfo or None)``: the operator's conversion
    (dora._host._payload), so nodes and operators send the same bytes and
    Arrow types for the same Python value."""
    global _to_payload
    from ._host import _payload

    _to_payload = _payload
    return _payload(data)


def _config_from_env() -> dict:
    raw = os.environ.get(ENV_NODE_CONFIG)
    if raw is None:
        raise DoraNodeError(
            "%s is not set: this program must be started by dora as a node of a dataflow "
            "(name it as a node's `path:` in dataflow.yml and run `dora run dataflow.yml`)" % ENV_NODE_CONFIG
        )
    try:
        cfg = json.loads(raw)
    except ValueError as e:
        raise DoraNodeError("%s is not valid JSON: %s" % (ENV_NODE_CONFIG, e)) from None
    if not isinstance(cfg, dict):
        raise DoraNodeError("%s is not a JSON object" % ENV_NODE_CONFIG)
    if cfg.get("version") != proto.VERSION:
        raise DoraNodeError(
            "%s has protocol version %s; this dora package speaks version %d "
            "(install the dora Python package of the dora that runs the dataflow)"
            % (ENV_NODE_CONFIG, cfg.get("version"), proto.VERSION)
        )
    return cfg


def _refuse_inside_operator() -> None:
    host = sys.modules.get("dora._host")
    if host is not None and getattr(host, "_native_send", None) is not None:
        raise DoraNodeError(
            "Node() cannot be used inside a Python operator: the runtime node owns the connection "
            "to the daemon; an operator gets its events through Operator.on_event"
        )


class Node:
    """A connection to the daemon that started this process.

    ``Node()`` reads ``DORA_NODE_CONFIG``, registers, and returns once every
    node of the dataflow has started (the daemon's start barrier).
    """

    def __init__(self, node_id: Optional[str] = None) -> None:
        if node_id is not None:
            raise DoraNodeError(
                "Node(%r): dynamic nodes are not supported by dora-go; start the program "
                "through dora (it is then Node())" % (node_id,)
            )
        _refuse_inside_operator()
        cfg = _config_from_env()
        self._cfg = cfg
        self._id: str = cfg.get("node_id", "")
        self._dataflow_id: str = cfg.get("dataflow_id", "")
        fds = (cfg.get("control_fd"), cfg.get("events_fd"))
        for fd in fds:
            if not isinstance(fd, int) or not proto.is_open(fd):
                raise DoraNodeError(
                    "dora node %r: descriptor %r from the daemon is not open (was this process "
                    "started by dora, directly, without a wrapper that closes descriptors?)" % (self._id, fd)
                )
            # Children of the node must not hold the sockets open: the
            # daemon tells a node's exit by their closing.
            proto.set_cloexec(fd)
        thr = cfg.get("shm_threshold") or 0
        self._threshold = thr if thr > 0 else proto.DEFAULT_SHM_THRESHOLD
        self._outputs = {o: proto.encode_str(o, "output id") for o in cfg.get("outputs") or ()}
        self._inputs = {i["id"]: i["id"] for i in cfg.get("inputs") or ()}
        self._link = _Link(self._id, proto.Conn(fds[0]))
        self._events = proto.Conn(fds[1])
        self._recv_lock = threading.Lock()
        self._queue: Deque[Event] = collections.deque()
        self._requested = False
        self._ended = False
        self._stream_error: Optional[BaseException] = None
        self._closed = False
        # Disconnects at close(), when the Node is collected, or at exit.
        self._finalizer = weakref.finalize(self, _disconnect, self._link, self._events, self._recv_lock)
        try:
            self._register()
        except BaseException:
            self._closed = True
            self._finalizer()
            raise

    def _register(self) -> None:
        ctrl = self._link.ctrl
        f = proto.encode(proto.Register(proto.VERSION, self._dataflow_id, self._id))
        try:
            ctrl.write_frame(f)
            got = ctrl.read_frame()
        except (EOFError, OSError) as e:
            raise DoraNodeError(
                "dora node %r: the daemon closed the connection before the dataflow started (%s)" % (self._id, e)
            ) from None
        assert got is not None
        frame, fds = got
        for fd in fds:
            proto._close_quietly(fd)
        msg = proto.decode(frame)
        if not isinstance(msg, proto.RegisterReply):
            raise DoraNodeError("dora node %r: daemon answered REGISTER with %s" % (self._id, proto.kind_name(frame[4])))
        if not msg.ok:
            raise DoraNodeError("dora node %r: %s" % (self._id, msg.error or "the daemon refused the node"))

    # -- identity

    @property
    def id(self) -> str:
        """The node's id in the dataflow."""
        return self._id

    @property
    def dataflow_id(self) -> str:
        """The running dataflow's UUID."""
        return self._dataflow_id

    @property
    def config(self) -> dict:
        """The configuration the daemon gave this node (DORA_NODE_CONFIG)."""
        return self._cfg

    def dataflow_descriptor(self) -> dict:
        """This node's entry of the dataflow descriptor."""
        return self._cfg.get("node") or {}

    # -- receiving

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event; blocks until there is one, or at most
        ``timeout`` seconds. None after the last event (STOP), or when the
        timeout passed first."""
        if self._closed:
            raise DoraNodeError("dora node %r is closed" % self._id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._recv_lock:
            while True:
                if self._queue:
                    return self._queue.popleft()
                if self._ended:
                    return None
                if self._stream_error is not None:
                    raise self._stream_error
                self._link.flush()
                try:
                    if not self._requested:
                        self._events.write_frame(proto.next_events_frame(MAX_BATCH))
                        self._requested = True
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    got = self._events.read_frame(left)
                except (EOFError, OSError, proto.MalformedFrame) as e:
                    if self._closed:
                        return None
                    self._stream_error = self._stream_failure(e)
                    raise self._stream_error from None
                if got is None:
                    return None
                self._requested = False
                try:
                    self._ingest(*got)
                except Exception as e:
                    # The rest of the batch is lost: the stream cannot go on.
                    self._stream_error = DoraNodeError("dora node %r: %s" % (self._id, e))
                    raise self._stream_error from e

    def _stream_failure(self, e: BaseException) -> DoraNodeError:
        if isinstance(e, (EOFError, ConnectionError)):
            return DoraNodeError(
                "dora node %r: the daemon closed the connection without a STOP event (did it crash?)" % self._id
            )
        return DoraNodeError("dora node %r: receiving events: %s" % (self._id, e))

    def __iter__(self) -> "Node":
        return self

    def __next__(self) -> Event:
        ev = self.next()
        if ev is None:
            raise StopIteration
        return ev

    def _ingest(self, frame: bytes, fds: List[int]) -> None:
        """Turn one EVENTS frame into events; UNMAP is handled here."""
        link = self._link
        try:
            if frame[4] != proto.EVENTS:
                raise proto.MalformedFrame("daemon answered NEXT_EVENTS with %s" % proto.kind_name(frame[4]))
            r = proto.Reader(memoryview(frame))
            n = r.count(1)
            with link.locked():
                for _ in range(n):
                    self._event(r, fds)
                r.done()
        finally:
            for fd in fds:
                proto._close_quietly(fd)

    def _event(self, r: proto.Reader, fds: List[int]) -> None:
        t = r.u8()
        if t == proto.EV_INPUT:
            raw = r.str()
            id_ = self._inputs.get(raw, raw)
            md = proto.read_metadata(r)
            d = proto.read_data(r)
            if isinstance(d, proto.Shm):
                addr, lease = self._attach(id_, d, fds)
                self._queue.append(Event(INPUT, id_, md, addr, lease))
            else:
                self._queue.append(Event(INPUT, id_, md, d))
        elif t == proto.EV_INPUT_CLOSED:
            raw = r.str()
            self._queue.append(Event(INPUT_CLOSED, self._inputs.get(raw, raw)))
        elif t == proto.EV_STOP:
            self._queue.append(Event(STOP))
            self._ended = True
        elif t == proto.EV_ERROR:
            self._queue.append(Event(ERROR, error=r.lstr()))
        elif t == proto.EV_UNMAP:
            self._link.unmap_locked(r.u64())
        else:
            r.i -= 1
            raise r.fail("event type %d" % t)

    def _attach(self, id_: str, d: proto.Shm, fds: List[int]) -> Any:
        maps = self._link.maps
        m = maps.get(d.region)
        if d.fd_attached:
            if not fds:
                raise proto.MalformedFrame("input %r: region %d announced without its descriptor" % (id_, d.region))
            fd = fds.pop(0)
            if m is not None:
                proto._close_quietly(fd)
            else:
                m = maps[d.region] = _Mapping(proto.map_read_only(fd, d.region_size), d.region_size)
        if m is None or d.len > m.size:
            raise proto.MalformedFrame("input %r: unknown shared-memory region %d" % (id_, d.region))
        m.refs += 1
        return m.addr, _Lease(self._link, d.region, d.len)

    # -- sending

    def send_output(self, output_id: str, data: Any, metadata: Optional[dict] = None) -> None:
        """Send ``data`` (bytes-like, pyarrow array, numpy array or list) on
        output ``output_id`` with optional metadata (a dict of bool, int,
        float, str or lists of them; ``open_telemetry_context`` travels
        apart)."""
        oid = self._outputs.get(output_id)
        if oid is None:
            if not isinstance(output_id, str):
                raise TypeError("send_output: output id must be a str, not %s" % type(output_id).__name__)
            raise ValueError(
                "dora node %r: output %r is not declared in the dataflow (declared: %s)"
                % (self._id, output_id, ", ".join(self._outputs) or "none")
            )
        if self._closed:
            raise DoraNodeError("dora node %r is closed" % self._id)
        payload, layout = _to_payload(data)
        mv = proto._bytes_view(payload)
        size = mv.nbytes
        otel, params = proto.split_user_metadata(metadata)
        link = self._link
        if size < self._threshold:
            md = bytearray()
            proto.put_metadata(md, time.time_ns(), otel, params, layout)
            frame = proto.send_output_frame(oid, md, mv, size)
            with link.locked():
                try:
                    link.write_locked(frame)
                except OSError as e:
                    raise self._send_failure(output_id, e) from None
            return
        if link.pool.has_lent():
            # Take back the regions released since the last send first, so
            # that the pool reuses them rather than making new ones.
            with link.locked():
                link.drain_locked(0)
        r = link.pool.get(size)
        try:
            r.region.write(mv)
            md = bytearray()
            proto.put_metadata(md, time.time_ns(), otel, params, layout)
            shm = proto.Shm(not r.announced, r.id, r.size, size)
            frame = proto.send_output_shm_frame(oid, md, shm)
        except BaseException:
            link.pool.abandon(r.id)
            raise
        with link.locked():
            try:
                link.write_locked(frame, () if r.announced else (r.region.fd,))
                r.announced = True
            except OSError as e:
                link.pool.abandon(r.id)
                raise self._send_failure(output_id, e) from None

    def _send_failure(self, output_id: str, e: OSError) -> DoraNodeError:
        return DoraNodeError("dora node %r: sending %r: %s (is the daemon gone?)" % (self._id, output_id, e))

    def close_outputs(self, *output_ids: str) -> None:
        """Tell receivers that these outputs send nothing more: they get
        INPUT_CLOSED without waiting for this node to exit."""
        for o in output_ids:
            if o not in self._outputs:
                raise ValueError("dora node %r: output %r is not declared in the dataflow" % (self._id, o))
        self._control(proto.encode(proto.CloseOutputs(tuple(output_ids))))

    def stop_dataflow(self, reason: str = "") -> None:
        """Ask the daemon to stop the whole dataflow."""
        self._control(proto.encode(proto.StopDataflow(reason)))

    def _control(self, frame: bytes) -> None:
        if self._closed:
            raise DoraNodeError("dora node %r is closed" % self._id)
        with self._link.locked():
            try:
                self._link.write_locked(frame)
            except OSError as e:
                raise DoraNodeError("dora node %r: %s (is the daemon gone?)" % (self._id, e)) from None

    # -- closing

    def close(self) -> None:
        """Disconnect from the daemon: this node's outputs close. Received
        data stays valid while referenced (its mappings go when the last
        reference does); nothing is released to the daemon any more: it
        takes back everything this node held when it disconnects. Runs by
        itself at interpreter exit and when the Node is collected."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()
        with self._recv_lock:
            self._queue.clear()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<dora.Node %r of dataflow %s>" % (self._id, self._dataflow_id)
