"""FixtureMissingEntryPoint: a well-formed module without `Operator`."""


class NotAnOperator:
    def on_event(self, dora_event, send_output):
        pass


def on_event(dora_event, send_output):
    pass
