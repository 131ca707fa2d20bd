"""FixtureInitError: Operator() raises."""


class Operator:
    def __init__(self):
        raise RuntimeError("init failed on purpose")

    def on_event(self, dora_event, send_output):
        raise AssertionError("never called")
