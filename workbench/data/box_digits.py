"""A synthetic object-detection set that builds offline: real handwritten digits on a canvas.

Each image is a `size` x `size` gray canvas holding 1 to `max_objects` of scikit-learn's
bundled 8x8 handwritten digits (`load_digits`), each upscaled (bilinear, `scipy.ndimage.zoom`)
to a random side in `scale`, placed where it overlaps no other digit, with a little noise
over all. A digit's box is the tight bounding box of its ink (pixels above INK), labeled with
the digit as a string "0".."9" - so a box is exactly what a careful person would draw, and a
detector has a real, if small, task: find the digits and tell them apart at several sizes.

`box_digits()` gives a pool and a test pool drawn from disjoint halves of the 1,797 digits,
so no handwritten digit of the test set is ever seen in training.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["CLASSES", "box_digits", "digit_scenes"]

CLASSES = [str(d) for d in range(10)]
INK = 0.2  # a zoomed pixel at least this dark (of 1) is ink: what the box must hold
NOISE = 0.05  # standard deviation of the Gaussian noise over the canvas
GAP = 2  # pixels kept free between two digits' patches, so boxes never touch


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(int)


def _half(half: int | None) -> np.ndarray:
    """Indices of load_digits' images to draw from: all, the first half (0) or the second (1)."""
    n = len(_digits()[1])
    if half is None:
        return np.arange(n)
    if half not in (0, 1):
        raise ValueError(f"half must be None, 0 or 1; got {half!r}")
    return np.arange(n // 2) if half == 0 else np.arange(n // 2, n)


def _place(rng: np.random.Generator, side: int, size: int, taken: list) -> tuple[int, int] | None:
    """A top-left corner for a side x side patch that keeps GAP pixels from every patch in
    `taken`; None when 50 random tries find none (the canvas is too full)."""
    for _ in range(50):
        x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        if all(x + side + GAP <= tx or tx + ts + GAP <= x or y + side + GAP <= ty or ty + ts + GAP <= y
               for tx, ty, ts in taken):
            return x, y
    return None


def digit_scenes(n: int, *, size: int = 128, seed: int = 0, max_objects: int = 3,
                 scale: tuple[int, int] = (16, 40), half: int | None = None, noise: float = NOISE):
    """`n` canvases of handwritten digits and their boxes.

    Returns (images float32 (n, size, size) in [0, 1], boxes): boxes[i] is a list of
    `(x, y, w, h, label)` (ints, label "0".."9") for image i, one per digit, sorted by
    (y, x). `scale`: the range of a digit's side in pixels (before its ink is cropped);
    `half`: draw digits only from the first (0) or second (1) half of load_digits; `noise`:
    the standard deviation of the Gaussian noise (drawn last: the same scenes without it)."""
    from scipy.ndimage import zoom

    lo, hi = (int(s) for s in scale)
    if n < 0 or max_objects < 1 or not 8 <= lo <= hi <= size:
        raise ValueError(f"need n >= 0, max_objects >= 1 and 8 <= scale[0] <= scale[1] <= size; "
                         f"got n={n}, max_objects={max_objects}, scale={scale}, size={size}")
    pixels, targets = _digits()
    source = _half(half)
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.float32)
    boxes = []
    for i in range(n):
        taken, image_boxes = [], []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            k = int(rng.choice(source))
            side = int(rng.integers(lo, hi + 1))
            spot = _place(rng, side, size, taken)
            if spot is None:
                continue
            x, y = spot
            patch = np.clip(zoom(pixels[k], side / 8, order=1), 0, 1)[:side, :side]
            ink_rows = np.flatnonzero((patch > INK).any(axis=1))
            ink_cols = np.flatnonzero((patch > INK).any(axis=0))
            if not len(ink_rows):  # an all-blank digit: nothing to box
                continue
            h, w = patch.shape
            region = images[i, y:y + h, x:x + w]
            np.maximum(region, patch, out=region)
            taken.append((x, y, side))
            image_boxes.append((x + int(ink_cols[0]), y + int(ink_rows[0]),
                                int(ink_cols[-1] - ink_cols[0] + 1), int(ink_rows[-1] - ink_rows[0] + 1),
                                str(targets[k])))
        boxes.append(sorted(image_boxes, key=lambda b: (b[1], b[0])))
    if noise:
        images += np.float32(noise) * rng.standard_normal(size=images.shape, dtype=np.float32)
    return np.clip(images, 0.0, 1.0), boxes


def box_digits(n: int = 1000, n_test: int = 200, seed: int = 0, **scene_options):
    """A boxes Pool of `n` digit canvases (ground truth included) and a test Pool of `n_test`
    whose handwritten digits the pool never uses (the other half of load_digits). Item ids
    are "scene-0000", ...; test ids "test-0000", .... `scene_options` go to `digit_scenes`."""
    from workbench.data.pool import Pool

    images, boxes = digit_scenes(n, seed=seed, half=0, **scene_options)
    test_images, test_boxes = digit_scenes(n_test, seed=seed + 1, half=1, **scene_options)
    pool = Pool.from_arrays(images, y=boxes, task="boxes", classes=CLASSES, name="box-digits",
                            item_ids=[f"scene-{i:04d}" for i in range(n)])
    test = Pool.from_arrays(test_images, y=test_boxes, task="boxes", classes=CLASSES,
                            name="box-digits-test", item_ids=[f"test-{i:04d}" for i in range(n_test)])
    return pool, test
