#!/usr/bin/env python3
"""plot: the sink. It receives the images (zero-copy: each one is a view of
the webcam's shared memory) and the detected boxes, and checks every box
against where scene.py drew the square in that frame. It fails (exit 1) on
any mismatch, or when boxes are missing."""

import os
import sys

from dora import Node

import scene

FRAMES = int(os.environ.get("FRAMES", "30"))

node = Node()
images = shared = checked = 0
errors = []
for event in node:
    if event["type"] != "INPUT":
        continue
    frame = event["metadata"]["frame"]
    if event["id"] == "image":
        images += 1
        shared += event.in_shared_memory
        img = event["value"].to_numpy(zero_copy_only=True).reshape(event["metadata"]["shape"])
        x0, y0, _, _ = scene.square_at(frame)
        if img[y0, x0].min() < 200:
            errors.append(f"frame {frame}: no square at ({x0}, {y0}) in the image")
    elif event["id"] == "bbox":
        got = tuple(int(v) for v in event["value"].to_pylist())
        want = scene.square_at(frame)
        if got != want:
            errors.append(f"frame {frame}: bbox {got}, the square is at {want}")
        checked += 1
        if frame % 10 == 0:
            print(f"plot: frame {frame}: bbox {got} matches")

print(f"plot: {images} images ({shared} in shared memory), {checked} boxes checked")
if checked != FRAMES or images != FRAMES:
    errors.append(f"expected {FRAMES} images and boxes")
for e in errors:
    print("plot:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print("plot: every bounding box matches the square")
