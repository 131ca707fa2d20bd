"""The synthetic camera scene shared by webcam.py (which draws it) and
plot.py (which knows where the square must be): a dark, slightly noisy
480x640 RGB frame with a bright 48x48 square that moves every frame, and a
few isolated bright specks that a detector must not mistake for it."""

import numpy as np

HEIGHT, WIDTH, SQUARE = 480, 640, 48


def square_at(frame: int):
    """(x_min, y_min, x_max, y_max) of the square in frame `frame`, inclusive."""
    x = (16 + 23 * frame) % (WIDTH - SQUARE)
    y = (8 + 17 * frame) % (HEIGHT - SQUARE)
    return x, y, x + SQUARE - 1, y + SQUARE - 1


def draw(frame: int) -> np.ndarray:
    rng = np.random.default_rng(frame)
    img = rng.integers(0, 60, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    x0, y0, x1, y1 = square_at(frame)
    img[y0 : y1 + 1, x0 : x1 + 1] = (250, 240, 230)
    # Specks: single bright pixels away from the square.
    for _ in range(5):
        sy, sx = int(rng.integers(0, HEIGHT)), int(rng.integers(0, WIDTH))
        if not (y0 - 2 <= sy <= y1 + 2 and x0 - 2 <= sx <= x1 + 2):
            img[sy, sx] = 255
    return img
