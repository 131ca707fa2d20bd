"""dora._arrow: format strings and the array <-> (data, layout) mapping."""

import datetime
import decimal

import pytest

pa = pytest.importorskip("pyarrow")
np = pytest.importorskip("numpy")

from dora import _arrow  # noqa: E402
from dora._arrow import ArrayInfo, array_to_layout, format_to_type, layout_to_array, type_to_format  # noqa: E402

TYPES = [
    (pa.null(), "n"),
    (pa.bool_(), "b"),
    (pa.int8(), "c"),
    (pa.uint8(), "C"),
    (pa.int16(), "s"),
    (pa.uint16(), "S"),
    (pa.int32(), "i"),
    (pa.uint32(), "I"),
    (pa.int64(), "l"),
    (pa.uint64(), "L"),
    (pa.float16(), "e"),
    (pa.float32(), "f"),
    (pa.float64(), "g"),
    (pa.binary(), "z"),
    (pa.large_binary(), "Z"),
    (pa.string(), "u"),
    (pa.large_string(), "U"),
    (pa.binary(4), "w:4"),
    (pa.decimal128(10, 3), "d:10,3"),
    (pa.decimal256(40, 2), "d:40,2,256"),
    (pa.date32(), "tdD"),
    (pa.date64(), "tdm"),
    (pa.time32("s"), "tts"),
    (pa.time32("ms"), "ttm"),
    (pa.time64("us"), "ttu"),
    (pa.time64("ns"), "ttn"),
    (pa.timestamp("s"), "tss:"),
    (pa.timestamp("ms", tz="UTC"), "tsm:UTC"),
    (pa.timestamp("us", tz="Europe/Paris"), "tsu:Europe/Paris"),
    (pa.timestamp("ns"), "tsn:"),
    (pa.duration("s"), "tDs"),
    (pa.duration("ns"), "tDn"),
    (pa.month_day_nano_interval(), "tin"),
]


@pytest.mark.parametrize("typ,fmt", TYPES, ids=[f for _, f in TYPES])
def test_format_round_trip(typ, fmt):
    assert type_to_format(typ) == fmt
    assert format_to_type(fmt) == typ


def test_nested_formats():
    assert type_to_format(pa.list_(pa.int32())) == "+l"
    assert type_to_format(pa.large_list(pa.int32())) == "+L"
    assert type_to_format(pa.list_(pa.int32(), 3)) == "+w:3"
    assert type_to_format(pa.struct([("a", pa.int8())])) == "+s"
    assert type_to_format(pa.map_(pa.string(), pa.int8())) == "+m"
    assert format_to_type("+l", [pa.int32()]) == pa.list_(pa.int32())
    assert format_to_type("+w:3", [pa.int32()]) == pa.list_(pa.int32(), 3)
    assert format_to_type("+s", [pa.int8(), pa.string()]) == pa.struct([("f0", pa.int8()), ("f1", pa.string())])
    entries = pa.struct([("key", pa.string()), ("value", pa.int8())])
    assert format_to_type("+m", [entries]) == pa.map_(pa.string(), pa.int8())


@pytest.mark.parametrize(
    "typ",
    [pa.dictionary(pa.int8(), pa.string()), pa.dense_union([pa.field("a", pa.int8())])],
    ids=["dictionary", "union"],
)
def test_unsupported_types_are_refused(typ):
    with pytest.raises(_arrow.UnsupportedType):
        type_to_format(typ)


@pytest.mark.parametrize("fmt", ["x", "+l", "w:abc", "d:1", "ts?:"])
def test_bad_formats_are_refused(fmt):
    with pytest.raises(_arrow.UnsupportedType):
        format_to_type(fmt)


def test_dictionary_hint():
    with pytest.raises(_arrow.UnsupportedType, match="dictionary_decode"):
        array_to_layout(pa.array(["a", "b", "a"]).dictionary_encode())


ARRAYS = {
    "int64": pa.array([1, -2, 3], type=pa.int64()),
    "int64_nulls": pa.array([1, None, 3], type=pa.int64()),
    "empty": pa.array([], type=pa.int32()),
    "null": pa.nulls(4),
    "bool": pa.array([True, False, None, True]),
    "float32_numpy": pa.array(np.arange(6, dtype=np.float32)),
    "float16": pa.array(np.array([1.5, 2.5], dtype=np.float16)),
    "strings": pa.array(["a", None, "ccc", ""]),
    "large_strings": pa.array(["x", "yy"], type=pa.large_string()),
    "binary": pa.array([b"\x00\x01", b"", None]),
    "fixed_binary": pa.array([b"abcd", b"efgh"], type=pa.binary(4)),
    "decimal": pa.array([decimal.Decimal("1.25"), None], type=pa.decimal128(5, 2)),
    "timestamp": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5)], type=pa.timestamp("us", tz="UTC")),
    "date": pa.array([datetime.date(2024, 1, 2)]),
    "list": pa.array([[1, 2], [], None, [3]], type=pa.list_(pa.int32())),
    "large_list": pa.array([[1.5], [2.5, 3.5]], type=pa.large_list(pa.float64())),
    "fixed_list": pa.array([[1, 2, 3], [4, 5, 6]], type=pa.list_(pa.int16(), 3)),
    "list_of_lists": pa.array([[[1], [2, 3]], [[4]]]),
    "struct": pa.array([{"x": 1, "y": "a"}, None, {"x": 3, "y": None}]),
    "map": pa.array([[("k", 1)], [("j", 2), ("i", 3)]], type=pa.map_(pa.string(), pa.int8())),
}


def _plain(v):
    """Python values with struct field names dropped (they do not travel)."""
    if isinstance(v, dict):
        return tuple(_plain(x) for x in v.values())
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _has_struct(t):
    if pa.types.is_struct(t):
        return True
    return any(_has_struct(t.field(i).type) for i in range(t.num_fields))


@pytest.mark.parametrize("name", sorted(ARRAYS))
@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "sliced"])
def test_layout_round_trip(name, sliced):
    arr = ARRAYS[name]
    if sliced and len(arr) > 1:
        arr = arr.slice(1)
    data, info = array_to_layout(arr)
    view = memoryview(data)
    for b in _spans(info):
        off, n = b
        assert off % 8 == 0, "buffer offsets are 8-byte aligned"
        assert off + n <= view.nbytes
    back = layout_to_array(info, bytes(view))
    if not _has_struct(arr.type):
        assert back.type == arr.type
    assert _plain(back.to_pylist()) == _plain(arr.to_pylist())
    assert len(back) == len(arr)
    assert back.null_count == arr.null_count


def _spans(info):
    for s in info.buffers:
        if s is not None:
            yield s
    for c in info.children:
        yield from _spans(c)


def test_single_buffer_is_not_copied():
    arr = pa.array(np.arange(1000, dtype=np.int64))
    data, info = array_to_layout(arr)
    assert isinstance(data, pa.Buffer)
    assert data.address == arr.buffers()[1].address
    assert info == ArrayInfo("l", 1000, 0, 0, (None, (0, 8000)), ())


def test_multi_buffer_layout_is_aligned_and_zero_padded():
    arr = pa.array(["a", None, "ccc"])
    data, info = array_to_layout(arr)
    assert isinstance(data, bytearray)
    assert info.format == "u" and info.length == 3 and info.null_count == 1
    validity, offsets, values = info.buffers
    assert validity[0] == 0 and offsets[0] % 8 == 0 and values[0] % 8 == 0
    assert bytes(data[values[0] : values[0] + 4]) == b"accc"
    gap = bytes(data[validity[0] + validity[1] : offsets[0]])
    assert gap == b"\x00" * len(gap)


def test_sliced_struct_is_compacted():
    arr = ARRAYS["struct"].slice(1, 2)
    data, info = array_to_layout(arr)
    assert info.offset == 0
    assert layout_to_array(info, data).to_pylist() == [None, {"f0": 3, "f1": None}]


def test_chunked_arrays_are_combined():
    ch = pa.chunked_array([[1, 2], [3]])
    data, info = array_to_layout(ch)
    assert layout_to_array(info, data).to_pylist() == [1, 2, 3]


def test_layout_to_array_does_not_copy():
    buf = bytearray(np.arange(4, dtype=np.int32).tobytes())
    info = ArrayInfo("i", 4, 0, 0, (None, (0, 16)), ())
    arr = layout_to_array(info, buf)
    assert arr.buffers()[1].address == np.frombuffer(buf, dtype=np.uint8).ctypes.data


def test_out_of_range_layout_is_refused():
    with pytest.raises(ValueError, match="data has 8 bytes"):
        layout_to_array(ArrayInfo("l", 2, 0, 0, (None, (0, 16)), ()), b"\x00" * 8)


def test_wrong_buffer_count_is_refused():
    with pytest.raises(ValueError, match="needs 2 buffers"):
        layout_to_array(ArrayInfo("l", 1, 0, 0, ((0, 8),), ()), b"\x00" * 8)


def test_raw_array():
    arr = _arrow.raw_array(b"\x01\x02\x03")
    assert arr.type == pa.uint8() and arr.to_pylist() == [1, 2, 3]
    assert _arrow.raw_array(b"").to_pylist() == []
