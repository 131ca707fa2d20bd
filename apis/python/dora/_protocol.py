"""The node <-> daemon protocol (``abi/PROTOCOL.md``) in pure Python.

This is the Python twin of Go's ``abi/wire`` and ``shm`` packages, kept
byte-compatible with them by the shared test vectors in
``abi/testdata/vectors`` (``tests/test_vectors.py`` here,
``abi/wire/vectors_test.go`` there). Three layers:

- the codec: :func:`encode` and :func:`decode` turn every message kind into
  bytes and back (frames, metadata with parameters and ``array_info``, data
  inline or in shared memory), plus the fast helpers the node uses on its
  hot path (:func:`encode_metadata`, :func:`send_output_frame`, ...);
- the transport: :class:`Conn` carries frames over one inherited unix
  stream socket, passing descriptors with ``SCM_RIGHTS`` and queueing the
  ones it receives as PROTOCOL.md says;
- shared memory: :class:`Region` (a ``memfd`` mapped with ``mmap(2)``
  through ctypes, so that its address is known and no extra descriptor is
  held) and :class:`SenderPool`, the port of ``shm/pool.go``.

It imports only the standard library (and ``dora._wire`` for the parameter
value rules shared with operators): pyarrow is not needed to speak the
protocol.
"""

from __future__ import annotations

import array
import ctypes
import errno
import mmap
import os
import select
import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _wire

VERSION = 1
HEADER_SIZE = 8
MAX_FRAME = 64 << 20
MAX_FDS = 32
DEFAULT_SHM_THRESHOLD = 4096
ENV_NODE_CONFIG = "DORA_NODE_CONFIG"

# Frame kinds.
REGISTER = 1
SEND_OUTPUT = 2
CLOSE_OUTPUTS = 3
RELEASE = 4
DROP_REGIONS = 5
STOP_DATAFLOW = 6
NEXT_EVENTS = 16
REGISTER_REPLY = 65
RELEASED = 66
EVENTS = 80

KIND_NAMES = {
    REGISTER: "REGISTER",
    SEND_OUTPUT: "SEND_OUTPUT",
    CLOSE_OUTPUTS: "CLOSE_OUTPUTS",
    RELEASE: "RELEASE",
    DROP_REGIONS: "DROP_REGIONS",
    STOP_DATAFLOW: "STOP_DATAFLOW",
    NEXT_EVENTS: "NEXT_EVENTS",
    REGISTER_REPLY: "REGISTER_REPLY",
    RELEASED: "RELEASED",
    EVENTS: "EVENTS",
}

# Event types inside EVENTS.
EV_INPUT = 1
EV_INPUT_CLOSED = 2
EV_STOP = 3
EV_ERROR = 4
EV_UNMAP = 5

# Where data travels.
DATA_NONE = 0
DATA_INLINE = 1
DATA_SHM = 2

# Parameter kinds (Go's wire.ParamKind, and dora._wire's).
P_BOOL, P_INT, P_FLOAT, P_STR, P_INT_LIST, P_FLOAT_LIST, P_STR_LIST = range(1, 8)

# Decoding limits, as abi/wire/metadata_codec.go.
MAX_PARAMETERS = 1024
MAX_ARRAY_DEPTH = 32
MAX_BUFFERS = 16


def kind_name(k: int) -> str:
    return KIND_NAMES.get(k, "Kind(%d)" % k)


class MalformedFrame(ValueError):
    """A frame that does not follow PROTOCOL.md."""


# --------------------------------------------------------------------------
# Values


class ArrayInfo(NamedTuple):
    """``array_info``: the layout of an Arrow array inside a message's data.
    Same fields as :class:`dora._arrow.ArrayInfo` (which needs pyarrow), so
    either can be encoded and ``dora._arrow.layout_to_array`` takes both.
    ``buffers`` holds ``(offset, length)`` pairs, ``None`` for an absent
    buffer (encoded as absent, offset 0, length 0)."""

    format: str
    length: int
    null_count: int
    offset: int
    buffers: Tuple[Optional[Tuple[int, int]], ...] = ()
    children: Tuple["ArrayInfo", ...] = ()


class IntList(list):
    """A decoded int list parameter (a plain ``list`` otherwise): the type
    records the wire kind, so that an empty list re-encodes as it came."""


class FloatList(list):
    """A decoded float list parameter; see :class:`IntList`."""


class StrList(list):
    """A decoded string list parameter; see :class:`IntList`."""


class Metadata(NamedTuple):
    """Metadata of SEND_OUTPUT and INPUT. ``parameters`` maps keys to bool,
    int, float, str, or :class:`IntList` / :class:`FloatList` /
    :class:`StrList` (plain lists are accepted when encoding)."""

    timestamp: int = 0
    open_telemetry_context: str = ""
    parameters: Dict[str, Any] = {}
    type: Optional[Any] = None  # ArrayInfo or dora._arrow.ArrayInfo


class Shm(NamedTuple):
    """Data in a shared-memory region: bytes ``[0, len)`` of ``region``
    (the sender's id in SEND_OUTPUT, a daemon key in INPUT)."""

    fd_attached: bool
    region: int
    region_size: int
    len: int


#: Data is ``None`` (no data), a bytes-like object (inline, possibly
#: empty) or :class:`Shm`.
Data = Union[None, bytes, bytearray, memoryview, Shm]


class Register(NamedTuple):
    version: int
    dataflow_id: str
    node_id: str


class SendOutput(NamedTuple):
    output_id: str
    metadata: Metadata
    data: Any = None


class CloseOutputs(NamedTuple):
    output_ids: Tuple[str, ...]


class Release(NamedTuple):
    regions: Tuple[int, ...]


class DropRegions(NamedTuple):
    regions: Tuple[int, ...]


class StopDataflow(NamedTuple):
    reason: str


class NextEvents(NamedTuple):
    max: int


class RegisterReply(NamedTuple):
    ok: bool
    error: str = ""


class Released(NamedTuple):
    regions: Tuple[int, ...]


class Events(NamedTuple):
    events: Tuple[Any, ...]


class Input(NamedTuple):
    id: str
    metadata: Metadata
    data: Any = None


class InputClosed(NamedTuple):
    id: str


class Stop(NamedTuple):
    pass


class Error(NamedTuple):
    message: str


class Unmap(NamedTuple):
    region: int


_MESSAGE_KIND = {
    Register: REGISTER,
    SendOutput: SEND_OUTPUT,
    CloseOutputs: CLOSE_OUTPUTS,
    Release: RELEASE,
    DropRegions: DROP_REGIONS,
    StopDataflow: STOP_DATAFLOW,
    NextEvents: NEXT_EVENTS,
    RegisterReply: REGISTER_REPLY,
    Released: RELEASED,
    Events: EVENTS,
}

# --------------------------------------------------------------------------
# Encoding

_u8 = struct.Struct("<B")
_u16 = struct.Struct("<H")
_u32 = struct.Struct("<I")
_u64 = struct.Struct("<Q")
_i64 = struct.Struct("<q")
_f64 = struct.Struct("<d")
_header = struct.Struct("<IBBH")
_array_nums = struct.Struct("<qqq")
_span = struct.Struct("<BQQ")
_shm = struct.Struct("<BBQQQ")  # where, fd_attached, region, region_size, len
_md_plain = struct.Struct("<QIHB")  # timestamp, empty otel, no parameters, no type

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF


def _put_str(out: bytearray, s: str, what: str = "string") -> None:
    b = s.encode("utf-8")
    if len(b) > _U16_MAX:
        raise ValueError("%s of %d bytes is longer than the protocol's %d" % (what, len(b), _U16_MAX))
    out += _u16.pack(len(b))
    out += b


def _put_lstr(out: bytearray, s: str) -> None:
    b = s.encode("utf-8")
    out += _u32.pack(len(b))
    out += b


def _put_param(out: bytearray, key: str, v: Any) -> None:
    t = type(v)
    if t is IntList:
        out += _u8.pack(P_INT_LIST) + _u32.pack(len(v))
        out += struct.pack("<%dq" % len(v), *v)
    elif t is FloatList:
        out += _u8.pack(P_FLOAT_LIST) + _u32.pack(len(v))
        out += struct.pack("<%dd" % len(v), *v)
    elif t is StrList:
        out += _u8.pack(P_STR_LIST) + _u32.pack(len(v))
        for s in v:
            _put_lstr(out, s)
    else:
        # The operator's rules (dora._wire), whose value encodings are the
        # protocol's: the same dict gives the same parameters either way.
        _wire._param(out, key, v)


def _put_array_info(out: bytearray, a: Any, depth: int = 0) -> None:
    if depth > MAX_ARRAY_DEPTH:
        raise ValueError("array_info nested deeper than %d" % MAX_ARRAY_DEPTH)
    _put_str(out, a.format, "array format")
    out += _array_nums.pack(a.length, a.null_count, a.offset)
    if len(a.buffers) > MAX_BUFFERS:
        raise ValueError("array_info with %d buffers" % len(a.buffers))
    out += _u8.pack(len(a.buffers))
    for s in a.buffers:
        if s is None:
            out += _span.pack(1, 0, 0)
        else:
            out += _span.pack(0, s[0], s[1])
    out += _u8.pack(len(a.children))
    for c in a.children:
        _put_array_info(out, c, depth + 1)


def put_metadata(
    out: bytearray,
    timestamp: int,
    otel: str = "",
    parameters: Optional[Any] = None,
    type_: Optional[Any] = None,
) -> None:
    """Append metadata. ``parameters`` is a dict (insertion order is the
    wire order)."""
    if not otel and not parameters and type_ is None:
        out += _md_plain.pack(timestamp, 0, 0, 0)
        return
    out += _u64.pack(timestamp)
    _put_lstr(out, otel)
    params = parameters or {}
    if len(params) > MAX_PARAMETERS:
        raise _wire.MetadataError("%d metadata parameters; at most %d travel" % (len(params), MAX_PARAMETERS))
    out += _u16.pack(len(params))
    for k, v in params.items():
        if not isinstance(k, str):
            raise _wire.MetadataError("metadata keys must be str, not %s" % type(k).__name__)
        _put_str(out, k, "metadata key")
        _put_param(out, k, v)
    if type_ is None:
        out += b"\x00"
    else:
        out += b"\x01"
        _put_array_info(out, type_)


def split_user_metadata(metadata: Optional[Any]) -> Tuple[str, Dict[str, Any]]:
    """A ``send_output`` metadata dict as ``(open_telemetry_context,
    parameters)``, the way operators' metadata is read (dora._wire)."""
    if not metadata:
        return "", {}
    if not hasattr(metadata, "items"):
        raise _wire.MetadataError("metadata must be a dict, not %s" % type(metadata).__name__)
    otel = ""
    params: Dict[str, Any] = {}
    for k, v in metadata.items():
        if k == _wire.OTEL_KEY:
            if not isinstance(v, str):
                raise _wire.MetadataError("metadata %r must be a str" % _wire.OTEL_KEY)
            otel = v
        else:
            params[k] = v
    return otel, params


def encode_metadata(md: Metadata) -> bytes:
    out = bytearray()
    put_metadata(out, md.timestamp, md.open_telemetry_context, md.parameters, md.type)
    return bytes(out)


def _begin(kind: int) -> bytearray:
    return bytearray(_header.pack(0, kind, 0, 0))


def _end(out: bytearray, nfds: int = 0) -> bytes:
    if len(out) > MAX_FRAME:
        raise ValueError("frame of %d bytes is larger than the protocol's %d" % (len(out), MAX_FRAME))
    if nfds > MAX_FDS:
        raise ValueError("%d descriptors in one frame" % nfds)
    _header.pack_into(out, 0, len(out), out[4], nfds, 0)
    return bytes(out)


def _pad8(out: bytearray) -> None:
    n = -len(out) % 8
    if n:
        out += bytes(n)


def _put_data(out: bytearray, d: Any) -> int:
    """Append data; returns the descriptors the frame carries for it."""
    if d is None:
        out += b"\x00"
        return 0
    if isinstance(d, Shm):
        out += _shm.pack(DATA_SHM, 1 if d.fd_attached else 0, d.region, d.region_size, d.len)
        return 1 if d.fd_attached else 0
    mv = _bytes_view(d)
    if mv.nbytes > _U32_MAX:
        raise ValueError("inline data of %d bytes" % mv.nbytes)
    out += b"\x01"
    out += _u32.pack(mv.nbytes)
    _pad8(out)
    out += mv
    return 0


def _bytes_view(d: Any) -> memoryview:
    mv = d if type(d) is memoryview else memoryview(d)
    if mv.format != "B" or mv.ndim != 1:
        if not mv.c_contiguous:
            mv = memoryview(mv.tobytes())
        mv = mv.cast("B")
    return mv


def _regions_frame(kind: int, regions: Sequence[int]) -> bytes:
    out = _begin(kind)
    out += _u32.pack(len(regions))
    out += struct.pack("<%dQ" % len(regions), *regions)
    return _end(out)


def encode(msg: Any) -> bytes:
    """One whole frame for ``msg`` (any message tuple of this module). The
    header's nfds counts the data sent with ``fd_attached``."""
    kind = _MESSAGE_KIND.get(type(msg))
    if kind is None:
        raise TypeError("not a protocol message: %r" % (msg,))
    if kind in (RELEASE, DROP_REGIONS, RELEASED):
        return _regions_frame(kind, msg.regions)
    out = _begin(kind)
    nfds = 0
    if kind == REGISTER:
        out += _u16.pack(msg.version)
        _put_str(out, msg.dataflow_id, "dataflow id")
        _put_str(out, msg.node_id, "node id")
    elif kind == SEND_OUTPUT:
        _put_str(out, msg.output_id, "output id")
        md = msg.metadata
        put_metadata(out, md.timestamp, md.open_telemetry_context, md.parameters, md.type)
        nfds = _put_data(out, msg.data)
    elif kind == CLOSE_OUTPUTS:
        out += _u16.pack(len(msg.output_ids))
        for s in msg.output_ids:
            _put_str(out, s, "output id")
    elif kind == STOP_DATAFLOW:
        _put_lstr(out, msg.reason)
    elif kind == NEXT_EVENTS:
        out += _u32.pack(msg.max)
    elif kind == REGISTER_REPLY:
        out += _u8.pack(1 if msg.ok else 0)
        _put_lstr(out, msg.error)
    elif kind == EVENTS:
        out += _u32.pack(len(msg.events))
        for ev in msg.events:
            nfds += _put_event(out, ev)
    return _end(out, nfds)


def _put_event(out: bytearray, ev: Any) -> int:
    t = type(ev)
    if t is Input:
        out += _u8.pack(EV_INPUT)
        _put_str(out, ev.id, "input id")
        md = ev.metadata
        put_metadata(out, md.timestamp, md.open_telemetry_context, md.parameters, md.type)
        return _put_data(out, ev.data)
    if t is InputClosed:
        out += _u8.pack(EV_INPUT_CLOSED)
        _put_str(out, ev.id, "input id")
    elif t is Stop:
        out += _u8.pack(EV_STOP)
    elif t is Error:
        out += _u8.pack(EV_ERROR)
        _put_lstr(out, ev.message)
    elif t is Unmap:
        out += _u8.pack(EV_UNMAP)
        out += _u64.pack(ev.region)
    else:
        raise TypeError("not an event: %r" % (ev,))
    return 0


# Hot-path encoders used by the node.

_NEXT_EVENTS_CACHE: Dict[int, bytes] = {}


def next_events_frame(max_events: int) -> bytes:
    f = _NEXT_EVENTS_CACHE.get(max_events)
    if f is None:
        f = _NEXT_EVENTS_CACHE[max_events] = encode(NextEvents(max_events))
    return f


def send_output_frame(output_id: bytes, metadata: Any, data: Any, size: int) -> bytearray:
    """SEND_OUTPUT with inline data (``data`` bytes-like of ``size`` bytes;
    size 0 sends no data). ``output_id`` is the encoded ``str`` (u16 length
    and UTF-8), ``metadata`` the encoded metadata."""
    out = bytearray(_header.pack(0, SEND_OUTPUT, 0, 0))
    out += output_id
    out += metadata
    if size == 0:
        out += b"\x00"
    else:
        out += b"\x01"
        out += _u32.pack(size)
        _pad8(out)
        out += data
    if len(out) > MAX_FRAME:
        raise ValueError("frame of %d bytes is larger than the protocol's %d" % (len(out), MAX_FRAME))
    _header.pack_into(out, 0, len(out), SEND_OUTPUT, 0, 0)
    return out


def send_output_shm_frame(output_id: bytes, metadata: Any, d: Shm) -> bytearray:
    out = bytearray(_header.pack(0, SEND_OUTPUT, 0, 0))
    out += output_id
    out += metadata
    out += _shm.pack(DATA_SHM, 1 if d.fd_attached else 0, d.region, d.region_size, d.len)
    _header.pack_into(out, 0, len(out), SEND_OUTPUT, 1 if d.fd_attached else 0, 0)
    return out


def encode_str(s: str, what: str = "string") -> bytes:
    out = bytearray()
    _put_str(out, s, what)
    return bytes(out)


# --------------------------------------------------------------------------
# Decoding


class Reader:
    """Reads the body of one frame (or any bytes when ``start`` is 0).
    Every short read raises :class:`MalformedFrame` with the offset."""

    __slots__ = ("b", "i", "n")

    def __init__(self, b: Any, start: int = HEADER_SIZE) -> None:
        self.b = b
        self.i = start
        self.n = len(b)
        if self.n < start:
            raise MalformedFrame("frame shorter than its header")

    def fail(self, msg: str) -> "MalformedFrame":
        return MalformedFrame("malformed frame: %s at offset %d" % (msg, self.i))

    def take(self, n: int) -> Any:
        i = self.i
        if n < 0 or n > self.n - i:
            raise self.fail("need %d bytes, have %d" % (n, self.n - i))
        self.i = i + n
        return self.b[i : i + n]

    def unpack(self, s: struct.Struct) -> tuple:
        i = self.i
        if s.size > self.n - i:
            raise self.fail("need %d bytes, have %d" % (s.size, self.n - i))
        self.i = i + s.size
        return s.unpack_from(self.b, i)

    def u8(self) -> int:
        return self.unpack(_u8)[0]

    def u16(self) -> int:
        return self.unpack(_u16)[0]

    def u32(self) -> int:
        return self.unpack(_u32)[0]

    def u64(self) -> int:
        return self.unpack(_u64)[0]

    def i64(self) -> int:
        return self.unpack(_i64)[0]

    def bool(self) -> bool:
        v = self.u8()
        if v > 1:
            self.i -= 1
            raise self.fail("boolean %d" % v)
        return v == 1

    def str(self) -> str:
        return self._text(self.take(self.u16()))

    def lstr(self) -> str:
        return self._text(self.take(self.u32()))

    def _text(self, b: Any) -> str:
        try:
            return str(b, "utf-8")
        except UnicodeDecodeError as e:
            raise self.fail("invalid UTF-8: %s" % e) from None

    def count(self, min_size: int) -> int:
        n = self.u32()
        if n * min_size > self.n - self.i:
            raise self.fail("%d elements cannot fit" % n)
        return n

    def pad8(self) -> None:
        n = -self.i % 8
        if n:
            self.take(n)

    def done(self) -> None:
        if self.i != self.n:
            raise self.fail("%d trailing bytes" % (self.n - self.i))


def read_metadata(r: Reader) -> Metadata:
    i = r.i
    if r.n - i >= _md_plain.size:
        ts, otel_len, n, has_type = _md_plain.unpack_from(r.b, i)
        if otel_len == 0 and n == 0 and has_type == 0:
            r.i = i + _md_plain.size
            return Metadata(ts, "", {}, None)
    ts = r.u64()
    otel = r.lstr()
    n = r.u16()
    if n > MAX_PARAMETERS:
        raise r.fail("%d parameters" % n)
    params: Dict[str, Any] = {}
    for _ in range(n):
        key = r.str()
        params[key] = _read_param(r, key)
    type_ = _read_array_info(r, 0) if r.bool() else None
    return Metadata(ts, otel, params, type_)


def _read_param(r: Reader, key: str) -> Any:
    kind = r.u8()
    if kind == P_BOOL:
        return r.bool()
    if kind == P_INT:
        return r.i64()
    if kind == P_FLOAT:
        return r.unpack(_f64)[0]
    if kind == P_STR:
        return r.lstr()
    if kind == P_INT_LIST:
        n = r.count(8)
        return IntList(r.unpack(struct.Struct("<%dq" % n)))
    if kind == P_FLOAT_LIST:
        n = r.count(8)
        return FloatList(r.unpack(struct.Struct("<%dd" % n)))
    if kind == P_STR_LIST:
        n = r.count(4)
        return StrList(r.lstr() for _ in range(n))
    r.i -= 1
    raise r.fail("parameter kind %d for %r" % (kind, key))



def _read_array_info(r: Reader, depth: int) -> ArrayInfo:
    if depth > MAX_ARRAY_DEPTH:
        raise r.fail("arrays nested too deeply")
    fmt = r.str()
    length, null_count, offset = r.unpack(_array_nums)
    nb = r.u8()
    if nb > MAX_BUFFERS:
        raise r.fail("%d buffers" % nb)
    bufs: List[Optional[Tuple[int, int]]] = []
    for _ in range(nb):
        absent, off, ln = r.unpack(_span)
        if absent > 1:
            raise r.fail("boolean %d" % absent)
        bufs.append(None if absent else (off, ln))
    nc = r.u8()
    kids = tuple(_read_array_info(r, depth + 1) for _ in range(nc))
    return ArrayInfo(fmt, length, null_count, offset, tuple(bufs), kids)


def read_data(r: Reader) -> Any:
    where = r.u8()
    if where == DATA_NONE:
        return None
    if where == DATA_INLINE:
        n = r.u32()
        r.pad8()
        return r.take(n)
    if where == DATA_SHM:
        fd_attached = r.bool()
        region, size, n = r.u64(), r.u64(), r.u64()
        if n > size:
            raise r.fail("shm payload of %d bytes in a region of %d" % (n, size))
        return Shm(fd_attached, region, size, n)
    r.i -= 1
    raise r.fail("data location %d" % where)


def read_event(r: Reader) -> Any:
    t = r.u8()
    if t == EV_INPUT:
        id_ = r.str()
        md = read_metadata(r)
        return Input(id_, md, read_data(r))
    if t == EV_INPUT_CLOSED:
        return InputClosed(r.str())
    if t == EV_STOP:
        return Stop()
    if t == EV_ERROR:
        return Error(r.lstr())
    if t == EV_UNMAP:
        return Unmap(r.u64())
    r.i -= 1
    raise r.fail("event type %d" % t)


def parse_header(frame: Any) -> Tuple[int, int, int]:
    """``(frame_len, kind, nfds)`` of a frame's first 8 bytes."""
    n, kind, nfds, _ = _header.unpack_from(frame, 0)
    return n, kind, nfds


def decode(frame: Any) -> Any:
    """Decode one whole frame into its message tuple. Inline data are
    views into ``frame`` (``memoryview(frame)`` slices when ``frame`` is a
    memoryview, bytes slices otherwise)."""
    if len(frame) < HEADER_SIZE:
        raise MalformedFrame("frame shorter than its header")
    n, kind, nfds = parse_header(frame)
    if n != len(frame):
        raise MalformedFrame("frame_len %d but the frame has %d bytes" % (n, len(frame)))
    r = Reader(frame)
    if kind == REGISTER:
        msg: Any = Register(r.u16(), r.str(), r.str())
    elif kind == SEND_OUTPUT:
        msg = SendOutput(r.str(), read_metadata(r), read_data(r))
    elif kind == CLOSE_OUTPUTS:
        msg = CloseOutputs(tuple(r.str() for _ in range(r.u16())))
    elif kind in (RELEASE, DROP_REGIONS, RELEASED):
        c = r.count(8)
        regions = r.unpack(struct.Struct("<%dQ" % c))
        msg = {RELEASE: Release, DROP_REGIONS: DropRegions, RELEASED: Released}[kind](tuple(regions))
    elif kind == STOP_DATAFLOW:
        msg = StopDataflow(r.lstr())
    elif kind == NEXT_EVENTS:
        m = r.u32()
        if m == 0:
            raise MalformedFrame("malformed frame: NEXT_EVENTS asks for 0 events")
        msg = NextEvents(m)
    elif kind == REGISTER_REPLY:
        msg = RegisterReply(r.bool(), r.lstr())
    elif kind == EVENTS:
        c = r.count(1)
        msg = Events(tuple(read_event(r) for _ in range(c)))
    else:
        raise MalformedFrame("malformed frame: unknown kind %d" % kind)
    r.done()
    return msg


# --------------------------------------------------------------------------
# Transport

_ANC_SIZE = socket.CMSG_SPACE(253 * 4)  # SCM_MAX_FD descriptors
_RECV_CHUNK = 64 << 10
_CMSG_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


class Conn:
    """Frames over one end of a connected unix stream socket.

    Reading follows PROTOCOL.md: ``recvmsg`` with ``MSG_CMSG_CLOEXEC``,
    received descriptors queued in arrival order, a frame with ``nfds = k``
    taking the next ``k``. One thread reads at a time; writes are
    serialised by a lock, so frames never interleave.
    """

    def __init__(self, fd: Union[int, socket.socket]) -> None:
        self.sock = fd if isinstance(fd, socket.socket) else socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self._buf = bytearray()
        self._fds: List[int] = []
        self._wlock = threading.Lock()
        self._closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- reading

    def read_frame(self, timeout: Optional[float] = None) -> Optional[Tuple[bytes, List[int]]]:
        """The next frame and the descriptors sent with it (the caller owns
        them). ``timeout`` None blocks; a number waits at most that long
        (0: only what is already there) and returns None when no whole
        frame arrived. A partial frame stays buffered for the next call.
        Raises EOFError when the peer closed between frames."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            got = self._take_frame()
            if got is not None:
                return got
            if not self._recv(deadline):
                return None

    def _take_frame(self) -> Optional[Tuple[bytes, List[int]]]:
        buf = self._buf
        if len(buf) < HEADER_SIZE:
            return None
        n, kind, nfds, _ = _header.unpack_from(buf, 0)
        if n < HEADER_SIZE or n > MAX_FRAME:
            raise MalformedFrame("malformed frame: frame length %d" % n)
        if nfds > MAX_FDS:
            raise MalformedFrame("malformed frame: %d descriptors in one frame" % nfds)
        if len(buf) < n:
            return None
        if nfds > len(self._fds):
            raise MalformedFrame(
                "malformed frame: %s announces %d descriptors, %d arrived" % (kind_name(kind), nfds, len(self._fds))
            )
        with memoryview(buf) as m:
            frame = bytes(m[:n])  # one copy; the view goes before the resize
        del buf[:n]
        fds = self._fds[:nfds]
        del self._fds[:nfds]
        return frame, fds

    def _recv(self, deadline: Optional[float]) -> bool:
        """Receive once; False when the deadline passed first."""
        flags = _CMSG_CLOEXEC
        if deadline is not None:
            left = deadline - time.monotonic()
            if left > 0:
                if not _wait_readable(self.sock.fileno(), left):
                    return False
            flags |= socket.MSG_DONTWAIT
        try:
            data, anc, mflags, _ = self.sock.recvmsg(_RECV_CHUNK, _ANC_SIZE, flags)
        except (BlockingIOError, InterruptedError):
            return deadline is None or time.monotonic() < deadline
        for level, typ, payload in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                self._fds.extend(fds)
        if mflags & socket.MSG_CTRUNC:
            raise MalformedFrame("malformed frame: control data truncated (descriptors lost)")
        if len(self._fds) > 4 * MAX_FDS:
            raise MalformedFrame("malformed frame: %d descriptors arrived without frames" % len(self._fds))
        if not data:
            if self._buf:
                raise ConnectionError("the peer closed the socket in the middle of a frame")
            raise EOFError("the peer closed the socket")
        self._buf += data
        return True

    # -- writing

    def write_frame(self, frame: Any, fds: Sequence[int] = ()) -> None:
        """Write one whole frame, passing ``fds`` with its first byte."""
        with self._wlock:
            self.write_frame_locked(frame, fds)

    def write_frame_locked(self, frame: Any, fds: Sequence[int] = ()) -> None:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        mv = memoryview(frame)
        while mv:
            n = self.sock.sendmsg([mv], anc, _NOSIGNAL)
            mv, anc = mv[n:], []

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in self._fds:
            _close_quietly(fd)
        self._fds = []
        self.sock.close()


def _wait_readable(fd: int, timeout: float) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(0, int(timeout * 1000 + 0.999))))


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# --------------------------------------------------------------------------
# Shared memory

_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mmap.restype = ctypes.c_void_p
        lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        lib.munmap.restype = ctypes.c_int
        lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        _libc = lib
    return _libc


_MAP_FAILED = ctypes.c_void_p(-1).value


def map_fd(fd: int, size: int, writable: bool) -> int:
    """mmap(2) ``size`` bytes of ``fd`` shared; returns the address. Unlike
    the ``mmap`` module it does not dup the descriptor and gives the
    address, which pyarrow needs to view the memory."""
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    addr = _c().mmap(None, size, prot, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == _MAP_FAILED:
        e = ctypes.get_errno()
        raise OSError(e, "mmap of %d bytes: %s" % (size, os.strerror(e)))
    return addr


def unmap(addr: int, size: int) -> None:
    if _c().munmap(addr, size) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "munmap: %s" % os.strerror(e))


def map_read_only(fd: int, size: int) -> int:
    """Map a received region read-only and close ``fd``: the mapping alone
    keeps the region alive."""
    try:
        st = os.fstat(fd)
        if size <= 0 or size > st.st_size:
            raise MalformedFrame("shared-memory region claims %d bytes but its file has %d" % (size, st.st_size))
        return map_fd(fd, size, False)
    finally:
        _close_quietly(fd)


def view(addr: int, size: int) -> memoryview:
    """A writable byte memoryview of mapped memory (valid until unmapped)."""
    return memoryview((ctypes.c_ubyte * size).from_address(addr)).cast("B")


class Region:
    """A memfd mapped read-write: the sender's side of a region."""

    __slots__ = ("fd", "size", "addr", "mem")

    def __init__(self, name: str, size: int) -> None:
        if size <= 0:
            raise ValueError("shm: region size %d" % size)
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            self.addr = map_fd(fd, size, True)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.size = size
        self.mem: Optional[memoryview] = view(self.addr, size)

    def write(self, src: Any) -> int:
        """Copy ``src`` (bytes-like) to the start of the region."""
        mv = _bytes_view(src)
        n = mv.nbytes
        if n > self.size:
            raise ValueError("%d bytes do not fit a region of %d" % (n, self.size))
        assert self.mem is not None
        self.mem[:n] = mv
        return n

    def close(self) -> None:
        if self.mem is not None:
            self.mem.release()
            self.mem = None
            unmap(self.addr, self.size)
        if self.fd >= 0:
            _close_quietly(self.fd)
            self.fd = -1


# The pool's knobs, as shm/pool.go.
MIN_REGION_SIZE = 64 << 10
MAX_FREE = 16
MAX_IN_FLIGHT = 8
MAX_WAIT = 0.020


def size_for(n: int) -> int:
    """Size of the region made for an n-byte payload: at least 64 KiB, a
    power of two, so a region serves many sizes."""
    if n <= MIN_REGION_SIZE:
        return MIN_REGION_SIZE
    return 1 << (n - 1).bit_length()


class PoolRegion:
    __slots__ = ("region", "id", "announced")

    def __init__(self, region: Any, id_: int) -> None:
        self.region = region
        self.id = id_
        self.announced = False

    @property
    def size(self) -> int:
        return self.region.size


class SenderPool:
    """A sender's regions (the port of ``shm.Pool``): one is lent per large
    message and comes back (:meth:`put`) when the daemon says every receiver
    released it (RELEASED), so the steady state maps nothing new.

    ``wait(timeout)`` is called, without the pool's lock, when
    ``MAX_IN_FLIGHT`` regions of the needed size are lent and none is free:
    it should read RELEASED frames for up to ``timeout`` seconds (calling
    :meth:`put`). After ``MAX_WAIT`` in total, :meth:`get` creates a region
    anyway, so a receiver that keeps its data cannot stall the sender for
    longer than that.
    """

    def __init__(
        self,
        name: str,
        create: Callable[[str, int], Any] = Region,
        wait: Optional[Callable[[float], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._create = create
        self._wait = wait
        self._clock = clock
        self._lock = threading.Lock()
        self._next_id = 0
        self._free: List[PoolRegion] = []
        self._lent: Dict[int, PoolRegion] = {}
        self._closed = False

    def get(self, n: int) -> PoolRegion:
        deadline: Optional[float] = None
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("shm: pool %s is closed" % self.name)
                r = self._take_free(n)
                if r is not None:
                    return r
                busy = self._lent_of_size(size_for(n))
            if busy < MAX_IN_FLIGHT or self._wait is None:
                break
            now = self._clock()
            if deadline is None:
                deadline = now + MAX_WAIT
            if now >= deadline:
                break
            self._wait(deadline - now)
        region = self._create(self.name, size_for(n))
        with self._lock:
            self._next_id += 1
            r = PoolRegion(region, self._next_id)
            self._lent[r.id] = r
            return r

    def _take_free(self, n: int) -> Optional[PoolRegion]:
        best = -1
        limit = 2 * size_for(n)
        for i, r in enumerate(self._free):
            s = r.size
            if n <= s <= limit and (best < 0 or s < self._free[best].size):
                best = i
        if best < 0:
            return None
        r = self._free.pop(best)
        self._lent[r.id] = r
        return r

    def _lent_of_size(self, size: int) -> int:
        return sum(1 for r in self._lent.values() if r.size == size)

    def put(self, id_: int) -> int:
        """Take back a lent region. When enough are idle already, unmap it
        instead and return its id, to announce in DROP_REGIONS; else 0."""
        with self._lock:
            r = self._lent.pop(id_, None)
            if r is None:
                return 0
            if self._closed or len(self._free) >= MAX_FREE:
                r.region.close()
                return id_
            self._free.append(r)
            return 0

    def abandon(self, id_: int) -> None:
        """Forget a lent region that could not be sent, unmapping it."""
        with self._lock:
            r = self._lent.pop(id_, None)
        if r is not None:
            r.region.close()

    def has_lent(self) -> bool:
        return bool(self._lent)

    def stats(self) -> Tuple[int, int]:
        """``(free, lent)`` region counts."""
        with self._lock:
            return len(self._free), len(self._lent)

    def close(self) -> None:
        """Unmap every region: the node is disconnecting, so the daemon
        keeps what receivers still use through its own descriptors."""
        with self._lock:
            self._closed = True
            regions = self._free + list(self._lent.values())
            self._free, self._lent = [], {}
        for r in regions:
            r.region.close()


def set_cloexec(fd: int) -> None:
    os.set_inheritable(fd, False)


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as e:
        if e.errno == errno.EBADF:
            return False
        raise
    return True
