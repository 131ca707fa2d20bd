"""Compact binary form of a message's metadata, exchanged in-process between
the Go python loader (loaders/python/codec.go) and :mod:`dora._host`.

It is private to one process and one build (both sides are compiled from the
same tree), so it has no compatibility promises; it exists because reading a
blob with ``struct`` is much cheaper than building Python objects one C-API
call at a time from Go. All integers are little-endian::

    metadata := u8 version(=1) | str otel | u32 n | param*n | u8 has_type | [array]
    param    := str key | u8 kind | value
    value    := kind 1 bool: u8 | 2 int: i64 | 3 float: f64 | 4 str: str
              | 5 int list: u32 n, i64*n | 6 float list: u32 n, f64*n
              | 7 str list: u32 n, str*n
    array    := str format | i64 length | i64 null_count | i64 offset
                | u32 n | (u64 offset, u64 len, u8 absent)*n | u32 m | array*m
    str      := u32 byte length | UTF-8 bytes

The kinds are the values of Go's ``wire.ParamKind``.
"""

from __future__ import annotations

import numbers
import struct
from typing import Any, Dict, List, Optional, Tuple

VERSION = 1
OTEL_KEY = "open_telemetry_context"

BOOL, INT, FLOAT, STR, INT_LIST, FLOAT_LIST, STR_LIST = range(1, 8)

_u8 = struct.Struct("<B")
_u32 = struct.Struct("<I")
_i64 = struct.Struct("<q")
_f64 = struct.Struct("<d")
_array_head = struct.Struct("<qqqI")
_span = struct.Struct("<QQB")

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1

# A layout is a tuple (format, length, null_count, offset, buffers, children)
# where buffers holds (offset, length) pairs or None: the shape of
# dora._arrow.ArrayInfo, which is a NamedTuple of the same fields.
Layout = Tuple[str, int, int, int, tuple, tuple]


class MetadataError(TypeError):
    """A metadata value that cannot travel."""


def _put_str(out: bytearray, s: str) -> None:
    b = s.encode("utf-8")
    out += _u32.pack(len(b))
    out += b


def _put_array(out: bytearray, a: Layout) -> None:
    fmt, length, null_count, offset, buffers, children = a[:6]
    _put_str(out, fmt)
    out += _array_head.pack(length, null_count, offset, len(buffers))
    for s in buffers:
        if s is None:
            out += _span.pack(0, 0, 1)
        else:
            out += _span.pack(s[0], s[1], 0)
    out += _u32.pack(len(children))
    for c in children:
        _put_array(out, c)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _scalar_kind(v: Any) -> int:
    t = type(v)
    if t is bool:
        return BOOL
    if t is int:
        return INT
    if t is float:
        return FLOAT
    if t is str:
        return STR
    # numpy scalars and other numbers
    if getattr(getattr(v, "dtype", None), "kind", None) == "b":
        return BOOL
    if isinstance(v, numbers.Integral):
        return INT
    if isinstance(v, numbers.Real):
        return FLOAT
    if isinstance(v, str):
        return STR
    return 0


def _int(key: str, v: Any) -> int:
    n = int(v)
    if not _INT_MIN <= n <= _INT_MAX:
        raise MetadataError("metadata %r: %d does not fit in 64 bits" % (key, n))
    return n


def _param(out: bytearray, key: str, v: Any) -> None:
    kind = _scalar_kind(v)
    if kind == BOOL:
        out += _u8.pack(BOOL)
        out += _u8.pack(1 if v else 0)
    elif kind == INT:
        out += _u8.pack(INT)
        out += _i64.pack(_int(key, v))
    elif kind == FLOAT:
        out += _u8.pack(FLOAT)
        out += _f64.pack(float(v))
    elif kind == STR:
        out += _u8.pack(STR)
        _put_str(out, str(v))
    elif isinstance(v, (list, tuple)) or type(v).__name__ == "ndarray":
        items = list(v)
        kinds = {_scalar_kind(x) for x in items}
        if kinds == {STR}:
            out += _u8.pack(STR_LIST)
            out += _u32.pack(len(items))
            for x in items:
                _put_str(out, str(x))
        elif kinds <= {INT}:
            out += _u8.pack(INT_LIST)
            out += _u32.pack(len(items))
            out += struct.pack("<%dq" % len(items), *(_int(key, x) for x in items))
        elif kinds <= {INT, FLOAT}:
            out += _u8.pack(FLOAT_LIST)
            out += _u32.pack(len(items))
            out += struct.pack("<%dd" % len(items), *(float(x) for x in items))
        else:
            raise MetadataError(
                "metadata %r: a list must hold only ints, only floats or only strs, not %s"
                % (key, ", ".join(sorted({type(x).__name__ for x in items})))
            )
    else:
        raise MetadataError(
            "metadata %r: %s values cannot be sent (use bool, int, float, str or a list of them)"
            % (key, type(v).__name__)
        )


def encode(metadata: Optional[Dict[str, Any]], array: Optional[Layout]) -> Optional[bytes]:
    """Encode ``send_output``'s metadata dict and the data's array layout;
    ``None`` when both are empty (raw bytes, no parameters)."""
    if not metadata and array is None:
        return None
    if metadata is not None and not hasattr(metadata, "items"):
        raise MetadataError("metadata must be a dict, not %s" % type(metadata).__name__)
    out = bytearray(_u8.pack(VERSION))
    params = []
    otel = ""
    for k, v in (metadata or {}).items():
        if not isinstance(k, str):
            raise MetadataError("metadata keys must be str, not %s" % type(k).__name__)
        if k == OTEL_KEY:
            if not isinstance(v, str):
                raise MetadataError("metadata %r must be a str" % OTEL_KEY)
            otel = v
        else:
            params.append((k, v))
    _put_str(out, otel)
    out += _u32.pack(len(params))
    for k, v in params:
        _put_str(out, k)
        _param(out, k, v)
    if array is None:
        out += _u8.pack(0)
    else:
        out += _u8.pack(1)
        _put_array(out, array)
    return bytes(out)


class _Reader:
    __slots__ = ("b", "i")

    def __init__(self, b: bytes) -> None:
        self.b = b
        self.i = 0

    def take(self, s: struct.Struct) -> tuple:
        v = s.unpack_from(self.b, self.i)
        self.i += s.size
        return v

    def str(self) -> str:
        (n,) = self.take(_u32)
        v = bytes(self.b[self.i : self.i + n]).decode("utf-8")
        self.i += n
        return v


def _get_array(r: _Reader, make) -> Any:
    fmt = r.str()
    length, null_count, offset, n = r.take(_array_head)
    bufs: List[Optional[Tuple[int, int]]] = []
    for _ in range(n):
        off, ln, absent = r.take(_span)
        bufs.append(None if absent else (off, ln))
    (m,) = r.take(_u32)
    kids = tuple(_get_array(r, make) for _ in range(m))
    return make(fmt, length, null_count, offset, tuple(bufs), kids)


def decode(blob: bytes, make=None) -> Tuple[str, Dict[str, Any], Any]:
    """Decode a blob into ``(otel, parameters, layout or None)``. ``make``
    builds layouts from the six fields (default: a plain tuple)."""
    make = make or (lambda *f: f)
    r = _Reader(blob)
    (version,) = r.take(_u8)
    if version != VERSION:
        raise ValueError("metadata blob version %d, expected %d" % (version, VERSION))
    otel = r.str()
    (n,) = r.take(_u32)
    params: Dict[str, Any] = {}
    for _ in range(n):
        key = r.str()
        (kind,) = r.take(_u8)
        if kind == BOOL:
            params[key] = r.take(_u8)[0] != 0
        elif kind == INT:
            params[key] = r.take(_i64)[0]
        elif kind == FLOAT:
            params[key] = r.take(_f64)[0]
        elif kind == STR:
            params[key] = r.str()
        elif kind in (INT_LIST, FLOAT_LIST):
            (cnt,) = r.take(_u32)
            s = struct.Struct("<%d%s" % (cnt, "q" if kind == INT_LIST else "d"))
            params[key] = list(r.take(s))
        elif kind == STR_LIST:
            (cnt,) = r.take(_u32)
            params[key] = [r.str() for _ in range(cnt)]
        else:
            raise ValueError("unknown parameter kind %d for %r" % (kind, key))
    (has_type,) = r.take(_u8)
    layout = _get_array(r, make) if has_type else None
    return otel, params, layout
