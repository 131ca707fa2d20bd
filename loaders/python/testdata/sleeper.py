"""Sleeps (GIL released) or spins (GIL held) for the number of seconds in
each input's data."""
import time

from dora import DoraStatus


class Operator:
    def on_event(self, dora_event, send_output):
        if dora_event["type"] == "INPUT":
            seconds = float(dora_event["data"])
            if dora_event["id"] == "sleep":
                time.sleep(seconds)
            else:
                end = time.time() + seconds
                while time.time() < end:
                    pass
        return DoraStatus.CONTINUE
