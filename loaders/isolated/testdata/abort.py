"""Echoes its inputs; input "abort" aborts the interpreter (SIGABRT), as a
broken C extension would."""
import os
import sys

from dora import DoraStatus


class Operator:
    def on_event(self, dora_event, send_output):
        if dora_event["type"] != "INPUT":
            return DoraStatus.CONTINUE
        if dora_event["id"] == "abort":
            print("abort.py: aborting the interpreter on purpose", file=sys.stderr, flush=True)
            os.abort()
        send_output(dora_event["id"], dora_event["data"])
        return DoraStatus.CONTINUE
