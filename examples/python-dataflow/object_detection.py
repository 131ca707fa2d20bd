"""object_detection: a Python operator (run by the runtime node's embedded
CPython). It finds the bright object in each image: threshold, then label
the connected components of the bright pixels (runs of pixels in each row,
merged with overlapping runs of the row above, union-find), and send the
bounding box of the largest on `bbox` as float32 [x_min, y_min, x_max,
y_max]. Isolated bright specks are smaller components and are ignored."""

import numpy as np
import pyarrow as pa

from dora import DoraStatus

THRESHOLD = 200


def row_runs(row: np.ndarray):
    """(start, end) of each run of True in a 1-D bool array, end exclusive."""
    edges = np.diff(np.concatenate(([0], row.view(np.int8), [0])))
    return zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))


def largest_component(mask: np.ndarray):
    parent = []

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    runs = []  # (label, y, x0, x1)
    prev = []  # runs of the previous row
    for y in np.flatnonzero(mask.any(axis=1)):
        cur = []
        for x0, x1 in row_runs(mask[y]):
            label = len(parent)
            parent.append(label)
            for py, px0, px1, plabel in prev:
                if py == y - 1 and px0 < x1 and x0 < px1:  # 4-connected overlap
                    ra, rb = find(plabel), find(label)
                    parent[max(ra, rb)] = min(ra, rb)
            cur.append((y, x0, x1, label))
            runs.append((label, y, x0, x1))
        prev = cur
    if not runs:
        return None
    boxes = {}
    for label, y, x0, x1 in runs:
        root = find(label)
        n, bx0, by0, bx1, by1 = boxes.get(root, (0, x0, y, x1 - 1, y))
        boxes[root] = (n + x1 - x0, min(bx0, x0), min(by0, y), max(bx1, x1 - 1), max(by1, y))
    n, x0, y0, x1, y1 = max(boxes.values())
    return x0, y0, x1, y1


class Operator:
    def __init__(self):
        self.detected = 0

    def on_event(self, dora_event, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT" and dora_event["id"] == "image":
            meta = dora_event["metadata"]
            frame = dora_event["value"].to_numpy().reshape(meta["shape"])
            box = largest_component(frame.max(axis=2) > THRESHOLD)
            if box is not None:
                send_output("bbox", pa.array(box, type=pa.float32()), {"frame": meta["frame"]})
                self.detected += 1
        elif dora_event["type"] == "STOP":
            print(f"object_detection: {self.detected} objects detected")
        return DoraStatus.CONTINUE
