"""What is inside a box, as a fixed-size vector: the pixels a box holds, resampled to a small
square, so that one classifier can say what any box of any size shows.

Cleaning asks "is this box's class right?" about each box on its own; a detector answers that
only where it also finds the object, and a light one trained on a few dozen images confuses
classes it would tell apart on a crop. Resampling is bilinear (`scipy.ndimage.map_coordinates`
at the centres of a `size` x `size` grid over the box), after a Gaussian blur as wide as the
grid's spacing where a box is larger than the grid: a 16-pixel digit keeps its strokes, and a
large object is averaged down instead of sampled at a few scattered pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SIZE = 16  # crops are SIZE x SIZE pixels (per channel)


def crops(images: np.ndarray, boxes: Sequence[Sequence], size: int = SIZE) -> np.ndarray:
    """(len(boxes), size * size * C) float32: the pixels of box k of image `images[k]`
    ((H, W) or (H, W, C) each), resampled to size x size; boxes as (x, y, w, h, ...). An image
    is its own pixels (one of a pool of mixed sizes cut out of its padding first: `mode="nearest"`
    repeats its edge, where the padding's zeros would darken a box at the edge)."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if len(images) != len(boxes):
        raise ValueError(f"{len(images)} images for {len(boxes)} boxes; expected one image per box")
    channels = images.shape[3]
    out = np.empty((len(boxes), size * size * channels), dtype=np.float32)
    steps = (np.arange(size, dtype=np.float32) + 0.5) / size
    for k, (image, box) in enumerate(zip(images, boxes)):
        x, y, w, h = (float(v) for v in box[:4])
        rows = np.repeat(y + steps * h - 0.5, size)  # pixel centres are at integer + 0.5
        cols = np.tile(x + steps * w - 0.5, size)
        sigma = (max(0.0, h / size - 1) / 2, max(0.0, w / size - 1) / 2)
        out[k] = np.stack([map_coordinates(gaussian_filter(image[:, :, c], sigma) if max(sigma) else
                                           image[:, :, c], [rows, cols], order=1, mode="nearest")
                           for c in range(channels)], axis=-1).ravel()
    return out
