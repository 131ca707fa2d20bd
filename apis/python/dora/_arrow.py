"""Arrow arrays <-> (one data buffer, layout) in dora's message format.

A dora message carries one contiguous data buffer. An Arrow array travels in
it as its buffers stored back to back, each at an offset aligned to 8 bytes,
described by an :class:`ArrayInfo` (the Python twin of Go's
``wire.ArrayInfo`` in ``abi/wire/metadata.go``): the Arrow C data interface
format string of the type, length, null count, offset, where each buffer is
in the data (``None`` for an absent buffer, such as a missing validity
bitmap), and the children's layouts. Raw bytes travel without a layout and
read as a ``uint8`` array.

Public helpers (shared by the operator host and the node API):

- :func:`type_to_format` / :func:`format_to_type`
- :func:`array_to_layout` -- array -> ``(data, ArrayInfo)``; no copy when the
  array has a single buffer, one copy otherwise
- :func:`layout_to_array` -- ``(ArrayInfo, data)`` -> array, without copying
  the data (the array references ``data``)
- :func:`raw_array` -- bytes -> ``uint8`` array, without copying

Limits of the format (``wire.ArrayInfo``): struct field names and child
nullability do not travel (struct fields come back as ``f0``, ``f1``, ...);
dictionary, union, run-end-encoded, view and extension types are refused.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import pyarrow as pa

ALIGN = 8


class ArrayInfo(NamedTuple):
    """Layout of one Arrow array inside a message's data."""

    format: str
    length: int
    null_count: int
    offset: int
    #: ``(offset, length)`` of each buffer in the data, ``None`` if absent,
    #: in the order the Arrow columnar format defines (validity first).
    buffers: Tuple[Optional[Tuple[int, int]], ...]
    children: Tuple["ArrayInfo", ...] = ()


_PRIMITIVE = {
    "n": pa.null(),
    "b": pa.bool_(),
    "c": pa.int8(),
    "C": pa.uint8(),
    "s": pa.int16(),
    "S": pa.uint16(),
    "i": pa.int32(),
    "I": pa.uint32(),
    "l": pa.int64(),
    "L": pa.uint64(),
    "e": pa.float16(),
    "f": pa.float32(),
    "g": pa.float64(),
    "z": pa.binary(),
    "Z": pa.large_binary(),
    "u": pa.string(),
    "U": pa.large_string(),
    "tdD": pa.date32(),
    "tdm": pa.date64(),
    "tts": pa.time32("s"),
    "ttm": pa.time32("ms"),
    "ttu": pa.time64("us"),
    "ttn": pa.time64("ns"),
    "tDs": pa.duration("s"),
    "tDm": pa.duration("ms"),
    "tDu": pa.duration("us"),
    "tDn": pa.duration("ns"),
    "tin": pa.month_day_nano_interval(),
}
_PRIMITIVE_FORMAT = {t: f for f, t in _PRIMITIVE.items()}
_TS_UNIT = {"s": "s", "m": "ms", "u": "us", "n": "ns"}
_TS_LETTER = {v: k for k, v in _TS_UNIT.items()}


class UnsupportedType(TypeError):
    """The Arrow type cannot travel in a dora message."""


def type_to_format(t: pa.DataType) -> str:
    """The Arrow C data interface format string of ``t``."""
    f = _PRIMITIVE_FORMAT.get(t)
    if f is not None:
        return f
    if pa.types.is_timestamp(t):
        return "ts%s:%s" % (_TS_LETTER[t.unit], t.tz or "")
    if pa.types.is_fixed_size_binary(t) and not pa.types.is_decimal(t):
        return "w:%d" % t.byte_width
    if pa.types.is_decimal(t):
        bits = t.byte_width * 8
        if bits == 128:
            return "d:%d,%d" % (t.precision, t.scale)
        return "d:%d,%d,%d" % (t.precision, t.scale, bits)
    if pa.types.is_map(t):
        return "+m"
    if pa.types.is_list(t):
        return "+l"
    if pa.types.is_large_list(t):
        return "+L"
    if pa.types.is_fixed_size_list(t):
        return "+w:%d" % t.list_size
    if pa.types.is_struct(t):
        return "+s"
    raise UnsupportedType(
        "Arrow type %s cannot be sent in a dora message (supported: primitive, "
        "string/binary, temporal, decimal, list, large_list, fixed_size_list, "
        "struct, map)%s" % (t, _hint(t))
    )


def _hint(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return "; decode it first with array.dictionary_decode()"
    return ""


def format_to_type(fmt: str, children: Sequence[pa.DataType] = ()) -> pa.DataType:
    """The pyarrow type of a format string; nested formats need their
    children's types."""
    t = _PRIMITIVE.get(fmt)
    if t is not None:
        return t
    try:
        if fmt.startswith("ts") and len(fmt) >= 4 and fmt[3] == ":":
            return pa.timestamp(_TS_UNIT[fmt[2]], tz=fmt[4:] or None)
        if fmt.startswith("w:"):
            return pa.binary(int(fmt[2:]))
        if fmt.startswith("d:"):
            parts = [int(p) for p in fmt[2:].split(",")]
            bits = parts[2] if len(parts) > 2 else 128
            if bits == 128:
                return pa.decimal128(parts[0], parts[1])
            if bits == 256:
                return pa.decimal256(parts[0], parts[1])
            ctor = getattr(pa, "decimal%d" % bits, None)
            if ctor is not None:
                return ctor(parts[0], parts[1])
        if fmt == "+l":
            (c,) = children
            return pa.list_(c)
        if fmt == "+L":
            (c,) = children
            return pa.large_list(c)
        if fmt.startswith("+w:"):
            (c,) = children
            return pa.list_(c, int(fmt[3:]))
        if fmt == "+s":
            return pa.struct([pa.field("f%d" % i, c) for i, c in enumerate(children)])
        if fmt == "+m":
            (entries,) = children
            if not pa.types.is_struct(entries) or entries.num_fields != 2:
                raise ValueError("map entries must be a struct of key and value")
            return pa.map_(entries.field(0).type, entries.field(1).type)
    except (ValueError, KeyError, IndexError) as e:
        raise UnsupportedType("bad Arrow format %r: %s" % (fmt, e)) from None
    raise UnsupportedType("unsupported Arrow format %r" % fmt)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _children(a: pa.Array) -> List[pa.Array]:
    t = a.type
    if pa.types.is_struct(t):
        return [a.field(i) for i in range(t.num_fields)]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_map(t):
        # .values is the whole child, ignoring this array's offset, which
        # the offsets buffer (or list_size * offset) applies.
        return [a.values]
    return []


def array_to_layout(array) -> Tuple[object, ArrayInfo]:
    """Lay an Arrow array out as one data buffer and its :class:`ArrayInfo`.

    ``data`` supports the buffer protocol. When the array (children
    included) has a single buffer, ``data`` is that buffer itself: no copy.
    Otherwise the buffers are copied once into a new ``bytearray``, each at
    an 8-byte aligned offset, the gaps zeroed.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not isinstance(array, pa.Array):
        raise TypeError("expected a pyarrow Array, got %s" % type(array).__name__)
    found: List[pa.Buffer] = []

    def walk(a: pa.Array) -> ArrayInfo:
        if pa.types.is_struct(a.type) and a.offset != 0:
            # A sliced struct's children are sliced too (StructArray.field);
            # a compact copy makes parent and children agree again.
            a = pa.concat_arrays([a])
        fmt = type_to_format(a.type)
        own = a.buffers()[: a.type.num_buffers]
        spans: List[Optional[int]] = []
        for b in own:
            if b is None:
                spans.append(None)
            else:
                found.append(b)
                spans.append(len(found) - 1)
        kids = tuple(walk(c) for c in _children(a))
        return ArrayInfo(fmt, len(a), a.null_count, a.offset, tuple(spans), kids)  # type: ignore[arg-type]

    shape = walk(array)
    offsets: List[int] = []
    total = 0
    for b in found:
        offsets.append(total)
        total += _align(b.size)
    if len(found) == 1:
        data: object = found[0]
    elif not found:
        data = b""
    else:
        out = bytearray(total)
        for off, b in zip(offsets, found):
            out[off : off + b.size] = b
        data = out

    def place(i: ArrayInfo) -> ArrayInfo:
        spans = tuple(None if s is None else (offsets[s], found[s].size) for s in i.buffers)  # type: ignore[index]
        return i._replace(buffers=spans, children=tuple(place(c) for c in i.children))

    return data, place(shape)


def layout_to_array(info: ArrayInfo, data) -> pa.Array:
    """Rebuild the array ``info`` describes over ``data`` (anything with the
    buffer protocol, or a ``pa.Buffer``) without copying; the array keeps a
    reference to ``data``."""
    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)

    def typ(i: ArrayInfo) -> pa.DataType:
        return format_to_type(i.format, [typ(c) for c in i.children])

    def build(i: ArrayInfo, t: pa.DataType) -> pa.Array:
        bufs = []
        for s in i.buffers:
            if s is None:
                bufs.append(None)
                continue
            off, n = s
            if off < 0 or n < 0 or off + n > buf.size:
                raise ValueError(
                    "array layout names bytes %d..%d but the data has %d bytes" % (off, off + n, buf.size)
                )
            bufs.append(buf.slice(off, n))
        if len(bufs) != t.num_buffers:
            raise ValueError("format %r needs %d buffers, the layout has %d" % (i.format, t.num_buffers, len(bufs)))
        if pa.types.is_map(t):
            kids = [build(i.children[0], pa.struct([t.key_field, t.item_field]))]
        elif pa.types.is_struct(t):
            kids = [build(c, t.field(k).type) for k, c in enumerate(i.children)]
        elif i.children:
            kids = [build(c, t.value_type) for c in i.children]
        else:
            kids = None
        null_count = i.null_count if i.null_count >= 0 else -1
        return pa.Array.from_buffers(t, i.length, bufs, null_count=null_count, offset=i.offset, children=kids)

    arr = build(info, typ(info))
    arr.validate()
    return arr


def raw_array(data) -> pa.Array:
    """``data`` (bytes-like) as a ``uint8`` array, without copying."""
    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    return pa.Array.from_buffers(pa.uint8(), buf.size, [None, buf], null_count=0)
