"""Benchmark operator: does nothing, on the caller's thread."""
from dora import DoraStatus


class Operator:
    any_thread = True

    def on_event(self, dora_event, send_output):
        return DoraStatus.CONTINUE
