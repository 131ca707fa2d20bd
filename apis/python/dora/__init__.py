"""Python API of dora-go, the Go re-implementation of the dora-rs dataflow runtime.

Operators (Python files named by ``python:`` in a dataflow) define a class
``Operator`` with ``on_event(self, dora_event, send_output) -> DoraStatus``;
the runtime node imports them into the CPython it embeds. ``from dora import
DoraStatus`` works there even when this package was never pip-installed: the
runtime carries a copy of these sources and puts it first on ``sys.path``.

Custom nodes (Python programs named by ``path:`` in a dataflow) use
``from dora import Node``: see ``dora.node`` and the package README.

This module imports nothing beyond the standard library, so that it loads
quickly and without pyarrow; the Arrow helpers live in ``dora._arrow``, and
``Node`` is imported from ``dora.node`` on first use.
"""

from enum import IntEnum

__version__ = "0.1.0"

#: Version of the in-process protocol between the Go python loader and
#: ``dora._host``. The runtime always uses the copy of this package it embeds,
#: so the two sides come from the same build.
PROTOCOL_VERSION = 1


class DoraStatus(IntEnum):
    """What ``Operator.on_event`` returns: whether the operator goes on."""

    CONTINUE = 0
    STOP = 1
    STOP_ALL = 2


def __getattr__(name: str):
    # `from dora import Node` loads the node API only when it is used.
    if name in ("Node", "Event"):
        from . import node

        return getattr(node, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


__all__ = ["DoraStatus", "Node", "PROTOCOL_VERSION", "__version__"]
