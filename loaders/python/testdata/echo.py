"""FixtureEcho of runtime/runtimetest, as a python operator.

It reads only event["data"], so it works without pyarrow."""
from dora import DoraStatus


class Operator:
    def __init__(self):
        self.inputs = 0

    def on_event(self, dora_event, send_output):
        if dora_event["type"] != "INPUT":
            return DoraStatus.CONTINUE
        self.inputs += 1
        input_id = dora_event["id"]
        if input_id == "fail":
            raise RuntimeError("requested failure")
        if input_id == "stop":
            return DoraStatus.STOP
        if input_id == "stop_all":
            return DoraStatus.STOP_ALL
        if input_id == "count":
            send_output("count", str(self.inputs).encode())
        else:
            send_output(input_id, dora_event["data"])
        return DoraStatus.CONTINUE
