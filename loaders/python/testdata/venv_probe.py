"""Run inside a virtualenv: reports what the operator can import."""
import json
import sys

import dora
from dora import DoraStatus


class Operator:
    def on_event(self, dora_event, send_output):
        if dora_event["type"] != "INPUT":
            return DoraStatus.CONTINUE
        import dora_venv_probe_pkg

        try:
            import pyarrow  # noqa: F401

            has_pyarrow = True
        except ImportError:
            has_pyarrow = False
        send_output(
            "report",
            json.dumps(
                {
                    "mark": dora_venv_probe_pkg.MARK,
                    "prefix": sys.prefix,
                    "executable": sys.executable,
                    "pyarrow": has_pyarrow,
                    "value_in_event": "value" in dora_event,
                    "data": dora_event["data"].decode(),
                    "version": list(sys.version_info[:3]),
                    "dora": dora.__file__,
                }
            ).encode(),
        )
        return DoraStatus.CONTINUE
