"""Host side of Python operators inside a dora-go runtime node.

Private: the Go python loader (loaders/python) is the only caller. It embeds
CPython, calls :func:`bootstrap` once per process, then makes one
:class:`Host` per operator, each used from that operator's own OS thread:
``load`` once, ``event`` per event, ``reload`` on hot reload, ``close`` once.
These methods never raise: they return an ``RC_*`` code and leave a
formatted traceback in ``Host.error``.

What an operator sees (the dora-rs contract):

- the file defines ``class Operator`` whose ``__init__()`` takes no
  arguments and whose ``on_event(self, dora_event, send_output)`` returns a
  :class:`dora.DoraStatus` (``None`` counts as CONTINUE; the loader warns
  once);
- ``dora_event`` is a read-only mapping: ``type`` ("INPUT", "INPUT_CLOSED",
  "STOP", "ERROR"), ``id``, ``value`` (a pyarrow array; absent when pyarrow
  is not installed), ``data`` (bytes), ``metadata`` (a dict) and ``error``;
- ``send_output(output_id, data, metadata=None)``.

Input lifetime. The input's bytes belong to the runtime and are only valid
during ``on_event``. ``data`` and ``value`` are built on first access, over
one copy of the input shared by both, which the operator may keep forever.
An ``Operator`` class that sets ``zero_copy_inputs = True`` gets ``value``
as a zero-copy view instead: it must not keep ``value`` (nor slices or numpy
views of it) after ``on_event`` returns; if it does, the event fails with an
error saying so (the view is detected through the input's memoryview, which
cannot be released while pyarrow still references it). In both modes an
operator that keeps the ``dora_event`` mapping itself keeps a working event:
the loader sees the extra reference and copies what the mapping may still
hand out before the input is released.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import json
import linecache
import os
import sys
import threading
import traceback
from typing import Any, Optional

from . import PROTOCOL_VERSION, DoraStatus, _wire
from ._event import EventMapping
from ._event import optional_pyarrow as _pyarrow

# Event kinds, as runtime.EventType in Go.
INPUT, INPUT_CLOSED, STOP, ERROR = 1, 2, 3, 4
_TYPE_NAMES = {INPUT: "INPUT", INPUT_CLOSED: "INPUT_CLOSED", STOP: "STOP", ERROR: "ERROR"}

# Return codes of Host methods; 0..2 are DoraStatus values.
RC_OK = 0
RC_EXCEPTION = 3  # Python raised; Host.error has the traceback
RC_NONE = 4  # on_event returned None: CONTINUE, the loader warns once
RC_IMPORT = 5  # the module could not be imported
RC_MISSING = 6  # the module lacks Operator or Operator.on_event

# Set by bootstrap: builtins implemented in Go.
#   _native_send(handle, output_id, payload, blob) -> None or error text
#   _native_write(handle, fd, data) -> None or error text
_native_send: Any = None
_native_write: Any = None

_tls = threading.local()
_HERE = os.path.normcase(os.path.abspath(__file__))


class Cancelled(BaseException):
    """Raised inside an operator's Python code when the runtime cancels the
    call (its context is done). A BaseException, so that ``except
    Exception`` does not swallow it."""


def bootstrap(config: str, send: Any, write: Any) -> None:
    """Finish setting the interpreter up; called once by the loader, with
    the GIL, before any operator loads."""
    global _native_send, _native_write
    cfg = json.loads(config)
    if cfg.get("protocol") != PROTOCOL_VERSION:
        raise RuntimeError(
            "dora package protocol %s, loader expects %s" % (PROTOCOL_VERSION, cfg.get("protocol"))
        )
    _native_send, _native_write = send, write
    exe = cfg.get("executable")
    if exe:
        # site.venv() finds pyvenv.cfg next to sys.executable; multiprocessing
        # and subprocess users start sys.executable.
        sys.executable = exe
    for k in cfg.get("unset_env", ()):
        os.environ.pop(k, None)
    if cfg.get("run_site"):
        import site

        site.main()
    if not sys.argv:
        sys.argv = [""]
    _install_streams()


def _unbuffered(fd: int, old: Any) -> Any:
    try:
        raw = io.FileIO(fd, "w", closefd=False)
    except OSError:
        return old
    return io.TextIOWrapper(
        raw,
        encoding=getattr(old, "encoding", None) or "utf-8",
        errors=getattr(old, "errors", None) or "backslashreplace",
        write_through=True,
    )


class _Router(io.TextIOBase):
    """sys.stdout / sys.stderr: text written from an operator's thread goes
    to that operator's writer in Go when the runtime gave one
    (OperatorSpec.Stdout/Stderr), anything else straight (unbuffered) to the
    process's file descriptor, which the daemon captures."""

    def __init__(self, fallback: Any, fd: int) -> None:
        self._fallback = fallback
        self._fd = fd
        self._bit = 1 if fd == 1 else 2

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._fallback, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return getattr(self._fallback, "errors", None) or "strict"

    @property
    def buffer(self) -> Any:
        return self._fallback.buffer

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        h = getattr(_tls, "host", None)
        if h is not None and h._routes & self._bit:
            if not isinstance(s, str):
                raise TypeError("write() argument must be str, not %s" % type(s).__name__)
            err = _native_write(h._handle, self._fd, s.encode(self.encoding, "backslashreplace"))
            if err is not None:
                raise OSError(err)
            return len(s)
        return self._fallback.write(s)

    def flush(self) -> None:
        try:
            self._fallback.flush()
        except (OSError, ValueError):
            pass

    def fileno(self) -> int:
        return self._fallback.fileno()

    def isatty(self) -> bool:
        try:
            return self._fallback.isatty()
        except (OSError, ValueError):
            return False


def _install_streams() -> None:
    if isinstance(sys.stdout, _Router):
        return
    out = _unbuffered(1, sys.__stdout__)
    err = _unbuffered(2, sys.__stderr__)
    for old in (sys.stdout, sys.stderr):
        try:
            old.flush()
        except Exception:
            pass
    sys.__stdout__, sys.__stderr__ = out, err  # type: ignore[misc]
    sys.stdout, sys.stderr = _Router(out, 1), _Router(err, 2)


def _arrow() -> Any:
    from . import _arrow as mod

    return mod


class Event(EventMapping):
    """``dora_event``: a read-only mapping that builds ``value``, ``data``
    and ``metadata`` on first access."""

    __slots__ = ("_kind", "_id", "_mv", "_blob", "_error", "_cache", "_zc", "_decoded")

    def __init__(self, kind: int, id_: Optional[str], mv: Any, blob: Optional[bytes], error: Optional[str], zc: bool = False) -> None:
        self._kind = kind
        self._id = id_
        self._mv = mv
        self._blob = blob
        self._error = error
        self._cache: dict = {}
        self._zc = zc
        self._decoded: Any = None

    def _type_name(self) -> str:
        return _TYPE_NAMES.get(self._kind, "UNKNOWN")

    def __getitem__(self, key: str) -> Any:
        if key == "type":
            return _TYPE_NAMES.get(self._kind, "UNKNOWN")
        kind = self._kind
        if key == "id" and kind in (INPUT, INPUT_CLOSED):
            return self._id
        if key == "error" and kind == ERROR:
            return self._error
        if kind == INPUT:
            c = self._cache
            v = c.get(key)
            if v is not None:
                return v
            if key == "data":
                v = c["data"] = self._data()
                return v
            if key == "value":
                v = c["value"] = self._value()
                return v
            if key == "metadata":
                otel, params, _ = self._decode()
                v = dict(params)
                if otel:
                    v[_wire.OTEL_KEY] = otel
                c["metadata"] = v
                return v
        raise KeyError(key)

    def _decode(self) -> Any:
        if self._decoded is None:
            blob = self._blob
            self._decoded = ("", {}, None) if blob is None else _wire.decode(blob)
        return self._decoded

    def _data(self) -> bytes:
        mv = self._mv
        if mv is None:
            return b""
        try:
            return bytes(mv)
        except ValueError:
            raise RuntimeError("the input's bytes are only available during on_event") from None

    def _value(self) -> Any:
        pa = _pyarrow()
        if not pa:
            raise KeyError("value: pyarrow is not installed in this Python; use event['data'] (bytes) or pip install pyarrow")
        layout = self._decode()[2]
        arrow = _arrow()
        if self._zc and self._mv is not None and "data" not in self._cache:
            src = self._mv  # zero-copy: pyarrow exports the memoryview
        else:
            src = self._cache.get("data")
            if src is None:
                src = self._cache["data"] = self._data()
        if layout is None:
            return arrow.raw_array(src)
        return arrow.layout_to_array(_info(arrow.ArrayInfo, layout), src)

    def _detach(self, escaped: bool) -> bool:
        """End of on_event: keep an escaped mapping usable, then release
        the input. False when something still references the input."""
        mv = self._mv
        if mv is None:
            return True
        c = self._cache
        if escaped:
            if "data" not in c:
                c["data"] = bytes(mv)
            if self._zc:
                c.pop("value", None)  # rebuilt from the copy if asked again
        else:
            c.clear()
        self._mv = None
        try:
            mv.release()
        except BufferError:
            return False
        return True


def _info(make: Any, t: tuple) -> Any:
    """A layout tuple from dora._wire as nested dora._arrow.ArrayInfo."""
    return make(t[0], t[1], t[2], t[3], t[4], tuple(_info(make, c) for c in t[5]))


def _format(e: BaseException) -> str:
    """The traceback of e without this module's and importlib's frames."""
    te = traceback.TracebackException(type(e), e, e.__traceback__)
    te.stack = traceback.StackSummary.from_list(
        [
            f
            for f in te.stack
            if os.path.normcase(os.path.abspath(f.filename)) != _HERE and not f.filename.startswith("<frozen importlib")
        ]
    )
    return "".join(te.format())


def _status_code(st: Any) -> int:
    if st is None:
        return RC_NONE
    if isinstance(st, DoraStatus):
        return int(st)
    # Another DoraStatus-like enum (a dora package imported from elsewhere).
    v = getattr(st, "value", st)
    if type(v) is int and 0 <= v <= 2 and (v is st or type(st).__name__ == "DoraStatus"):
        return v
    raise TypeError(
        "Operator.on_event returned %s (%s); expected a dora.DoraStatus (CONTINUE, STOP or STOP_ALL)"
        % (_short_repr(st), type(st).__name__)
    )


def _short_repr(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the operator from source every time: no __pycache__ next to
    user files, and a hot reload never runs stale bytecode (pyc files are
    validated by an mtime with one-second resolution)."""

    def get_code(self, fullname: str) -> Any:
        source = self.get_data(self.path)
        return compile(source, self.path, "exec", dont_inherit=True)


class Host:
    """One operator: its module, its instance, its send_output."""

    _names_in_use: set = set()

    def __init__(self, handle: int, path: str, node_id: str, operator_id: str, routes: int = 0) -> None:
        self._handle = handle
        self._path = path
        self._node = node_id
        self._operator = operator_id
        self._routes = routes  # bit 1: stdout, bit 2: stderr go to Go writers
        self._send = self.send_output
        self._mod: Any = None
        self._name = ""
        self._inst: Any = None
        self._on_event: Any = None
        self._zc = False
        self._any_thread = 0
        self.error = ""

    # -- module handling -------------------------------------------------

    def _module_name(self, path: str) -> str:
        import hashlib

        stem = os.path.splitext(os.path.basename(path))[0]
        stem = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem) or "operator"
        base = "dora_operator_%s_%s" % (stem, hashlib.sha1(os.fsencode(path)).hexdigest()[:8])
        name, n = base, 1
        while name in Host._names_in_use or name in sys.modules:
            n += 1
            name = "%s_%d" % (base, n)
        return name

    def _exec(self, path: str, name: str) -> Any:
        linecache.checkcache(path)
        folder = os.path.dirname(path)
        if folder not in sys.path:
            # As dora-rs: modules next to the operator are importable.
            sys.path.insert(0, folder)
        loader = _SourceLoader(name, path)
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        old = sys.modules.get(name)
        sys.modules[name] = mod
        try:
            loader.exec_module(mod)
        except BaseException:
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
            raise
        return mod

    def _instantiate(self, mod: Any) -> Any:
        """Returns (rc, instance): RC_MISSING with self.error set, or 0."""
        cls = getattr(mod, "Operator", None)
        if cls is None:
            self.error = (
                "%s defines no `Operator`: a python operator is a class `Operator` whose __init__() "
                "takes no arguments, with a method on_event(self, dora_event, send_output)" % self._path
            )
            return RC_MISSING, None
        if not callable(cls) or not callable(getattr(cls, "on_event", None)):
            self.error = "%s: `Operator` (%s) has no method on_event(self, dora_event, send_output)" % (
                self._path,
                type(cls).__name__,
            )
            return RC_MISSING, None
        try:
            return RC_OK, cls()
        except BaseException as e:
            self.error = _format(e)
            return RC_EXCEPTION, None

    def _adopt(self, mod: Any, inst: Any) -> None:
        self._mod = mod
        self._inst = inst
        self._on_event = inst.on_event
        self._zc = bool(getattr(inst, "zero_copy_inputs", False))
        self._any_thread = 1 if getattr(inst, "any_thread", False) else 0

    def load(self) -> int:
        _tls.host = self
        name = self._module_name(self._path)
        Host._names_in_use.add(name)
        self._name = name
        try:
            mod = self._exec(self._path, name)
        except BaseException as e:
            self.error = _format(e)
            self._forget_name()
            return RC_IMPORT
        rc, inst = self._instantiate(mod)
        if rc != RC_OK:
            sys.modules.pop(name, None)
            self._forget_name()
            return rc
        self._adopt(mod, inst)
        return RC_OK

    def _forget_name(self) -> None:
        Host._names_in_use.discard(self._name)

    def reload(self, path: str) -> int:
        """Re-import the file and make a new instance. If the new class
        defines on_reload(self, previous), it is called with the old
        instance to carry state over; otherwise the state is lost. On any
        failure the old module and instance stay in place."""
        old_mod, old_inst = self._mod, self._inst
        old_path = self._path
        self._path = path
        try:
            mod = self._exec(path, self._name)
        except BaseException as e:
            self.error = _format(e)
            self._path = old_path
            return RC_IMPORT
        rc, inst = self._instantiate(mod)
        if rc == RC_OK:
            hook = getattr(inst, "on_reload", None)
            if callable(hook):
                try:
                    hook(old_inst)
                except BaseException as e:
                    self.error = _format(e)
                    rc = RC_EXCEPTION
        if rc != RC_OK:
            sys.modules[self._name] = old_mod
            self._path = old_path
            return rc
        self._adopt(mod, inst)
        return RC_OK

    def close(self) -> int:
        inst, self._inst = self._inst, None
        self._on_event = None
        rc = RC_OK
        if inst is not None:
            drop = getattr(inst, "drop", None)
            if callable(drop):
                try:
                    drop()
                except BaseException as e:
                    self.error = _format(e)
                    rc = RC_EXCEPTION
            del drop
        del inst  # __del__ runs here unless the operator is referenced elsewhere
        if self._name:
            if sys.modules.get(self._name) is self._mod:
                sys.modules.pop(self._name, None)
            self._forget_name()
        self._mod = None
        if getattr(_tls, "host", None) is self:
            _tls.host = None
        for s in (sys.stdout, sys.stderr):
            try:
                s.flush()
            except Exception:
                pass
        return rc

    # -- events ------------------------------------------------------------

    def event(self, kind: int, id_: Optional[str], mv: Any, blob: Optional[bytes], error: Optional[str]) -> int:
        ev = Event(kind, id_, mv, blob, error, self._zc)
        if self._any_thread:
            _tls.host = self  # route this call's prints (see _Router)
        try:
            rc = _status_code(self._on_event(ev, self._send))
        except BaseException as e:
            self.error = _format(e)
            rc = RC_EXCEPTION
        if self._any_thread:
            _tls.host = None
        # ev is referenced by this frame and by getrefcount's argument: more
        # means the operator kept the mapping.
        escaped = sys.getrefcount(ev) > 2
        if not ev._detach(escaped) and rc != RC_EXCEPTION:
            self.error = (
                "Operator.on_event kept a reference to event['value'] (or a slice or numpy view of it) "
                "after returning. With zero_copy_inputs = True, value is a view of the runtime's buffer, "
                "valid only during on_event: copy what you keep (e.g. value.to_numpy().copy()), "
                "or drop zero_copy_inputs."
            )
            rc = RC_EXCEPTION
        return rc

    def send_output(self, output_id: str, data: Any, metadata: Optional[dict] = None) -> None:
        """Send ``data`` (bytes-like, pyarrow array, numpy array or list) as
        output ``output_id``, with optional metadata (a dict of bool, int,
        float, str or lists of them; ``open_telemetry_context`` travels
        apart)."""
        if not isinstance(output_id, str):
            raise TypeError("send_output: output id must be a str, not %s" % type(output_id).__name__)
        payload, layout = _payload(data)
        blob = _wire.encode(metadata, layout)
        err = _native_send(self._handle, output_id, payload, blob)
        if err is not None:
            raise RuntimeError("send_output(%r) failed: %s" % (output_id, err))


def _layout(array: Any) -> Any:
    data, info = _arrow().array_to_layout(array)
    if info.format == "C" and info.null_count == 0 and not info.children:
        # A uint8 array without nulls is raw bytes: no layout (what C and
        # Rust operators expect), and only the array's own bytes.
        off, _ = info.buffers[1]
        start = off + info.offset
        return memoryview(data)[start : start + info.length], None
    return data, info


def _payload(data: Any) -> Any:
    t = type(data)
    if t is bytes or t is bytearray:
        return data, None
    if t is memoryview:
        return (data if data.c_contiguous else data.tobytes()), None
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(data, (pa.Array, pa.ChunkedArray)):
        return _layout(data)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(data, np.ndarray):
        pa = _need_pyarrow("sending a numpy array")
        return _layout(pa.array(data if data.ndim == 1 else data.ravel()))
    if isinstance(data, (list, tuple)):
        pa = _need_pyarrow("sending a list")
        return _layout(pa.array(list(data)))
    if isinstance(data, str):
        raise TypeError("send_output: data is a str; send bytes (data.encode()) or a pyarrow array (pa.array([data]))")
    try:
        mv = memoryview(data)
    except TypeError:
        raise TypeError(
            "send_output: cannot send %s; send bytes, a pyarrow array, a numpy array or a list" % t.__name__
        ) from None
    return (mv if mv.c_contiguous else mv.tobytes()), None


def _need_pyarrow(what: str) -> Any:
    pa = _pyarrow()
    if not pa:
        raise TypeError("%s needs pyarrow, which is not installed; send bytes instead" % what)
    return pa
