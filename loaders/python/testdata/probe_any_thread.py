"""probe.py with any_thread = True."""
import probe


class Operator(probe.Operator):
    any_thread = True
