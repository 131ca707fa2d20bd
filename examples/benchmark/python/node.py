#!/usr/bin/env python3
"""The benchmark's sender in Python: the method of ../node/main.go. For each
size, BENCH_COUNT messages 5 ms apart on `latency`; then, for each size,
BENCH_COUNT back-to-back messages on `throughput` and a 1-byte sentinel.
As in dora's benchmark, the payload is copied into the message buffer,
which for large messages is shared memory."""

import os
import time

import numpy as np

from dora import Node

# dora's benchmark sizes, in bytes.
SIZES = [0, 8, 64, 512, 2048, 4096, 4 * 4096, 10 * 4096, 100 * 4096, 1000 * 4096]


def main():
    node = Node()
    count = int(os.environ.get("BENCH_COUNT", "100"))
    payload = memoryview(np.random.default_rng().integers(0, 256, SIZES[-1], dtype=np.uint8).tobytes())
    send = node.send_output
    for size in SIZES:
        for _ in range(count):
            send("latency", payload[:size])
            time.sleep(0.005)
    for size in SIZES:
        for _ in range(count):
            send("throughput", payload[:size])
        send("throughput", payload[:1])
    node.close()


if __name__ == "__main__":
    main()
