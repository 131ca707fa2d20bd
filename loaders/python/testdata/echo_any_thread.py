"""FixtureEcho again, with any_thread = True: on_event runs on the
runtime's calling thread instead of the operator's own thread."""
import echo


class Operator(echo.Operator):
    any_thread = True
