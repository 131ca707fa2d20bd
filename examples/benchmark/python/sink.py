#!/usr/bin/env python3
"""The benchmark's receiver in Python: the method and output of
../sink/main.go. Latency is the receive time minus the send timestamp of
the message's metadata; the size is that of the input's Arrow array (a
zero-copy view for large messages). Prints the same table and, with
BENCH_CSV set, appends the same CSV columns (durations in ns)."""

import os
import time

import pyarrow  # noqa: F401  (loaded before the first message is timed)

from dora import Node


class Batch:
    def __init__(self, mode, size, first_sent):
        self.mode, self.size = mode, size
        self.latencies = []
        self.first_sent = first_sent
        self.last_recv = first_sent

    def msg_per_sec(self):
        return len(self.latencies) / ((self.last_recv - self.first_sent) / 1e9)


def label(size):
    if size >= 1024 and size % 1024 == 0:
        return "%dKiB" % (size // 1024)
    return "%dB" % size


def pct(s, p):
    return s[int(p * (len(s) - 1))] if s else 0


def duration(ns):
    """ns as Go's time.Duration prints it (51.2µs, 1.5ms)."""
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("µs", 10**3)):
        if ns >= scale:
            whole, frac = divmod(ns, scale)
            digits = len(str(scale)) - 1
            f = ("%0*d" % (digits, frac)).rstrip("0")
            return "%d%s%s%s" % (whole, "." if f else "", f, unit)
    return "%dns" % ns


def report(batches):
    csv = open(os.environ["BENCH_CSV"], "a") if os.environ.get("BENCH_CSV") else None
    print("%-10s %9s %6s %12s %10s %10s %10s %10s %10s %10s" % ("mode", "size", "n", "avg|msg/s", "p50", "p95", "p99", "p99.9", "min", "max"))
    for b in batches:
        s = sorted(b.latencies)
        avg = b.msg_per_sec() if b.mode == "throughput" else sum(s) / len(s)
        cols = (pct(s, 0.5), pct(s, 0.95), pct(s, 0.99), pct(s, 0.999), s[0], s[-1])
        print("%-10s %9s %6d %12.0f %10s %10s %10s %10s %10s %10s" % ((b.mode, label(b.size), len(s), avg) + tuple(duration(c) for c in cols)))
        if csv:
            csv.write("%s,%d,%s,%d,%.0f,%d,%d,%d,%d,%d,%d\n" % ((b.mode, b.size, label(b.size), len(s), avg) + cols))
    if csv:
        csv.close()


def main():
    node = Node()
    done, cur = [], None
    for event in node:
        kind = event["type"]
        if kind == "STOP":
            break
        if kind == "INPUT":
            now = time.time_ns()
            mode, size, sent = event["id"], len(event["value"]), event.timestamp
        # Hand a shared-memory input back before waiting for the next one,
        # as the Go sink does (RecvInto releases the previous event).
        del event
        if kind != "INPUT":
            continue
        if mode == "throughput" and size == 1:
            cur = None  # sentinel: the batch ended
            continue
        if cur is None or cur.mode != mode or cur.size != size:
            cur = Batch(mode, size, sent)
            done.append(cur)
        cur.latencies.append(now - sent)
        cur.last_recv = now
    node.close()
    report(done)


if __name__ == "__main__":
    main()
