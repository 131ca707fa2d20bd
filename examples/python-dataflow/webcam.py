#!/usr/bin/env python3
"""webcam: a camera without a camera. On each tick it draws the next frame
of the synthetic scene (scene.py) and sends it on `image` as a flat uint8
array (921,600 bytes: it travels through shared memory, written once),
with the frame number and the image shape as metadata."""

import os

from dora import Node

import scene

FRAMES = int(os.environ.get("FRAMES", "30"))

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "tick":
        img = scene.draw(sent)
        node.send_output("image", img, {"frame": sent, "shape": list(img.shape)})
        sent += 1
        if sent == FRAMES:
            break  # exiting closes `image`: the others finish after it
    elif event["type"] == "STOP":
        break
print(f"webcam: sent {sent} frames of {scene.HEIGHT}x{scene.WIDTH}x3")
