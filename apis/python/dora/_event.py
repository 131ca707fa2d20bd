"""The shape every dora event has, for nodes and operators alike.

An event is a read-only mapping whose keys depend on its type; subclasses
say how each value is built (lazily).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The keys of each event type, by type name.
KEYS = {
    "INPUT": ("type", "id", "value", "data", "metadata"),
    "INPUT_CLOSED": ("type", "id"),
    "STOP": ("type",),
    "ERROR": ("type", "error"),
}
# An INPUT without pyarrow has no "value".
INPUT_KEYS_NO_PYARROW = ("type", "id", "data", "metadata")


_pa: Any = None  # the pyarrow module once imported; False when not installed


def optional_pyarrow() -> Any:
    """pyarrow, imported on first use, or False when it is not installed
    (events then carry their bytes without a ``value``)."""
    global _pa
    if _pa is None:
        try:
            import pyarrow

            _pa = pyarrow
        except ImportError:
            _pa = False
    return _pa


class EventMapping(Mapping):
    """The mapping protocol over ``keys_for(type name, pyarrow present)``."""

    __slots__ = ()

    def _type_name(self) -> str:
        raise NotImplementedError

    def _keys(self) -> tuple:
        name = self._type_name()
        if name == "INPUT" and not optional_pyarrow():
            return INPUT_KEYS_NO_PYARROW
        return KEYS.get(name, ("type",))

    def __getitem__(self, key: str) -> Any:
        raise NotImplementedError

    def __contains__(self, key: object) -> bool:
        return key in self._keys()

    def __iter__(self):
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        # A dict's repr, minus the raw bytes when the array shows them.
        keys = self._keys()
        return "{" + ", ".join("%r: %r" % (k, self[k]) for k in keys if not (k == "data" and "value" in keys)) + "}"
