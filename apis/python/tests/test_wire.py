"""dora._wire: the metadata blob shared with loaders/python/codec.go."""

import pytest

from dora import _wire


def test_nothing_to_say_is_none():
    assert _wire.encode(None, None) is None
    assert _wire.encode({}, None) is None


def test_round_trip_all_kinds():
    md = {
        "flag": True,
        "n": -(2**63),
        "x": 2.5,
        "s": "héllo",
        "ints": [1, 2, 3],
        "floats": [1.5, 2],
        "strs": ["a", "", "c"],
        "empty": [],
        "open_telemetry_context": "00-abc-def-01",
    }
    layout = ("+l", 2, 0, 1, (None, (0, 12)), (("i", 3, 1, 0, ((16, 1), (24, 12)), ()),))
    otel, params, got = _wire.decode(_wire.encode(md, layout))
    assert otel == "00-abc-def-01"
    want = dict(md)
    del want["open_telemetry_context"]
    want["floats"] = [1.5, 2.0]
    assert params == want
    assert isinstance(params["floats"][1], float)
    assert got == layout


def test_layout_without_metadata():
    otel, params, got = _wire.decode(_wire.encode(None, ("C", 3, 0, 0, (None, (0, 3)), ())))
    assert (otel, params, got) == ("", {}, ("C", 3, 0, 0, (None, (0, 3)), ()))


def test_numpy_scalars():
    np = pytest.importorskip("numpy")
    _, params, _ = _wire.decode(
        _wire.encode({"i": np.int32(7), "f": np.float32(0.5), "b": np.bool_(True), "a": np.array([1, 2])}, None)
    )
    assert params == {"i": 7, "f": 0.5, "b": True, "a": [1, 2]}


@pytest.mark.parametrize(
    "md,match",
    [
        ({"x": None}, "NoneType values cannot be sent"),
        ({"x": {"nested": 1}}, "dict values cannot be sent"),
        ({"x": [1, "a"]}, "only ints, only floats or only strs"),
        ({"x": 2**64}, "does not fit in 64 bits"),
        ({1: 2}, "keys must be str"),
        ({"open_telemetry_context": 5}, "must be a str"),
        ("not a dict", "must be a dict"),
    ],
)
def test_bad_metadata(md, match):
    with pytest.raises(_wire.MetadataError, match=match):
        _wire.encode(md, None)


def test_bad_version():
    with pytest.raises(ValueError, match="version"):
        _wire.decode(b"\x09")
