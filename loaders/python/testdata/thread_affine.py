"""Uses a sqlite3 connection made in __init__ (sqlite3 refuses use from
another thread) and reports the thread each call runs on."""
import sqlite3
import threading

from dora import DoraStatus


class Operator:
    def __init__(self):
        self.db = sqlite3.connect(":memory:")
        self.db.execute("create table events (id text)")
        self.init_thread = threading.get_ident()

    def on_event(self, dora_event, send_output):
        if dora_event["type"] == "INPUT":
            self.db.execute("insert into events values (?)", (dora_event["id"],))
            (n,) = self.db.execute("select count(*) from events").fetchone()
            same = threading.get_ident() == self.init_thread
            send_output("n", ("%d %s" % (n, same)).encode())
        return DoraStatus.CONTINUE
