"""Image boxes: what one label of a "boxes" pool is (the objects drawn on an image), and the
rules every part of the workbench reads it by.

A box is `(x, y, w, h, label)`: its top-left corner and its width and height in image pixels,
the origin at the image's top-left corner, x to the right and y down (COCO's convention), so
that a box never depends on how large the browser draws the image. A box lies inside its image
(`0 <= x`, `x + w <= width`, likewise for y) and has a positive size. An image's label is a
`BoxList`, its boxes in reading order (top to bottom, then left to right); `[]` says the image
holds no object. `str()` is how the store holds it: JSON with a schema version,
`{"v": 1, "boxes": [[12, 30, 20, 24, "3"], ...]}`, so a later version can read an old log.
Coordinates keep what was given (whole numbers stay whole); others are rounded to 1/100 pixel.

The images of a pool may differ in size (a folder of photos): the pool's array then holds each
one in the top-left of a canvas as large as the largest width and height, zeros elsewhere, and
`pool.image_sizes` each one's own (width, height). A box is checked against its own image's
size (`image_size(pool, item)`), never the canvas: a box in the padding is refused, and what a
detector finds there is cut to the image (`clipped`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from workbench.data.tasks import versioned_parts

SCHEMA_VERSION = 1
EDGE = 1e-6  # how far past the image's edge a coordinate may stray (float noise from the browser)
FIELDS = ("x", "y", "w", "h", "label")


class Box(NamedTuple):
    """A rectangle of an image, `w` x `h` pixels from its top-left corner (`x`, `y`), marked `label`."""

    x: float
    y: float
    w: float
    h: float
    label: str

    def describe(self) -> str:
        return f"{_at(self.x)},{_at(self.y)} {_at(self.w)}x{_at(self.h)} {self.label}"


class BoxList(tuple):
    """The boxes of one image, ordered by (y, x, h, w, label); empty: the image holds no object.
    `str()` is how the store holds it (JSON with the schema version)."""

    __slots__ = ()

    def __str__(self) -> str:
        return json.dumps({"v": SCHEMA_VERSION, "boxes": [list(b) for b in self]}, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"BoxList({[tuple(b) for b in self]!r})"

    def describe(self) -> str:
        """The boxes in a few words: `12,30 20x24 3` each."""
        return "; ".join(b.describe() for b in self) or "no boxes"


def _num(v: float) -> str:
    return f"{v:g}"


def _at(v: float) -> str:
    """A coordinate as the store holds it, to 1/100 pixel (`:g` would cut 12345.67 to 12345.7)."""
    return f"{float(v):.2f}".rstrip("0").rstrip(".")


def _loaded(value: str) -> list:
    """The store's JSON (either schema: the versioned object, or a bare list)."""
    example = json.dumps({"v": SCHEMA_VERSION, "boxes": [[12, 30, 20, 24, "3"]]})
    return versioned_parts(value, "boxes", SCHEMA_VERSION, example)


def _fields(raw, i: int) -> tuple:
    if isinstance(raw, Mapping):
        if missing := [k for k in FIELDS if k not in raw]:
            raise ValueError(f"box {i} {dict(raw)!r} has no {', '.join(missing)}; a box is "
                             "(x, y, w, h, label) or {'x': .., 'y': .., 'w': .., 'h': .., 'label': ..}")
        if extra := [k for k in raw if k not in FIELDS]:
            raise ValueError(f"box {i} {dict(raw)!r} has keys {extra} besides x, y, w, h and label")
        return tuple(raw[k] for k in FIELDS)
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, np.ndarray)) or len(raw) != 5:
        raise ValueError(f"box {i} is {raw!r}; a box is (x, y, w, h, label): its top-left corner, "
                         "width and height in image pixels, and its class")
    return tuple(raw)


def _coordinate(value, what: str, shown) -> float:
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    # a whole number too large for a float (10**400) is no pixel either, and math.isfinite
    # would raise OverflowError on it
    if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > 1e12 \
            or not math.isfinite(value):
        raise ValueError(f"box {shown!r}: {what} {str(value)[:40]!r} is not a finite number of "
                         "image pixels")
    return value


def _rounded(start, size, limit) -> tuple:
    """A box's start and size along one axis as the store holds them: whole numbers as they
    are, others to 1/100 pixel by their ends (rounding the end, not the size, so that a box
    inside the image stays inside it)."""
    if isinstance(start, int) and isinstance(size, int):
        return start, size
    begin = start if isinstance(start, int) else round(float(start), 2) + 0.0  # + 0.0: no -0.0
    length = round(min(round(float(start) + float(size), 2), float(limit)) - begin, 2)
    return begin, size if isinstance(size, int) and length == size else length


def box_list(value, width: float, height: float, labels: Sequence[str]) -> BoxList:
    """The BoxList a label names: a list of `(x, y, w, h, label)` (tuples, lists or dicts), or
    the JSON the store holds, on an image `width` x `height` pixels. A ValueError that names the
    box and what was expected for a box outside the image, one of zero or negative size, a
    label not among `labels`, the same box twice."""
    if isinstance(value, str):
        value = _loaded(value)
    if isinstance(value, (Mapping, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"a boxes pool takes a list of (x, y, w, h, label) boxes for each label "
                         f"(none, one or several), got {type(value).__name__} {value!r}")
    order = {str(name): i for i, name in enumerate(labels)}
    boxes = []
    for i, raw in enumerate(value):
        shown = _fields(raw, i)
        x, y, w, h = (_coordinate(v, what, shown) for v, what in zip(shown[:4], FIELDS))
        label = shown[4]
        if not isinstance(label, str):
            raise ValueError(f"box {shown!r}: label {label!r} is not a string (one of the classes "
                             f"{list(order)})")
        if w <= 0 or h <= 0:
            raise ValueError(f"box {shown!r} has size {_num(w)}x{_num(h)}; a box's width and height "
                             "are more than 0 pixels")
        if x < -EDGE or y < -EDGE or x + w > width + EDGE or y + h > height + EDGE:
            raise ValueError(f"box {shown!r} reaches outside the image ({_num(width)}x{_num(height)} "
                             f"pixels); a box has 0 <= x, x + w <= {_num(width)}, 0 <= y, y + h <= "
                             f"{_num(height)}")
        if label not in order:
            raise ValueError(f"box {shown!r} has label {label!r}, which is not among the classes "
                             f"{list(order)}")
        (x, w), (y, h) = _rounded(max(x, 0), w, width), _rounded(max(y, 0), h, height)
        if w <= 0 or h <= 0:
            raise ValueError(f"box {shown!r} is less than 0.01 pixel wide or high; the store keeps "
                             "coordinates to 1/100 pixel")
        boxes.append(Box(x, y, w, h, label))
    boxes.sort(key=lambda b: (b.y, b.x, b.h, b.w, order[b.label]))
    for a, b in zip(boxes, boxes[1:]):
        if a == b:
            raise ValueError(f"box {tuple(a)!r} is given twice")
    return BoxList(boxes)


def image_size(pool, item=None) -> tuple[int, int]:
    """(width, height) in pixels of an image of an image pool (what its boxes are drawn on):
    of `item` (an item id, or a position in the pool when an int), or, without one, of every
    image of a pool whose images have one size (a ValueError for a pool of several sizes)."""
    if pool.kind != "image":
        raise ValueError(f"pool {pool.name!r} is a {pool.kind} pool; boxes are drawn on images")
    position = 0
    if item is not None:  # an unknown item is named as such, whatever the pool's sizes
        position = int(item) if isinstance(item, (int, np.integer)) else pool.position(item)
        if not 0 <= position < len(pool):
            raise IndexError(f"position {position} is not in pool {pool.name!r} of {len(pool)} images")
    sizes = getattr(pool, "image_sizes", None)
    if sizes is None:
        return int(pool.X.shape[2]), int(pool.X.shape[1])
    if item is None and len(np.unique(sizes, axis=0)) > 1:
        raise ValueError(f"the images of pool {pool.name!r} differ in size; ask for one image's: "
                         "image_size(pool, item_id)")
    width, height = sizes[position]
    return int(width), int(height)


def image_sizes(pool) -> np.ndarray:
    """(N, 2) int: the (width, height) of each image of an image pool, in pool order."""
    sizes = getattr(pool, "image_sizes", None)
    return np.tile(image_size(pool), (len(pool), 1)) if sizes is None else np.asarray(sizes)


def clipped(detections, width: float, height: float) -> list[tuple]:
    """A detector's boxes of one image, (x, y, w, h, label, score), cut to the image's own
    `width` x `height` pixels (a padded pool's images lie in the top-left of a larger canvas):
    a box reaching into the padding keeps its part inside the image, one wholly outside it
    (or left with no size) is dropped. Coordinates to 2 decimals, as the detector gives them."""
    out = []
    for x, y, w, h, *rest in detections:
        x0, y0 = max(float(x), 0.0), max(float(y), 0.0)
        x1, y1 = min(float(x) + float(w), float(width)), min(float(y) + float(h), float(height))
        x0, y0, x1, y1 = (round(v, 2) for v in (x0, y0, x1, y1))
        if x1 - x0 > 0 and y1 - y0 > 0:
            out.append((x0, y0, round(x1 - x0, 2), round(y1 - y0, 2), *rest))
    return out


def checked_sizes(sizes, n: int, canvas_height: int, canvas_width: int) -> np.ndarray | None:
    """The (width, height) of each of `n` images padded (bottom and right) to a canvas
    `canvas_width` x `canvas_height`, as an (n, 2) int array; None when every image fills the
    canvas (one size: nothing padded). A ValueError for sizes that are no such thing."""
    if sizes is None:
        return None
    array = np.asarray(sizes)
    if array.shape != (n, 2) or not np.issubdtype(array.dtype, np.number) \
            or not np.isfinite(array).all() or (array != np.round(array)).any():
        raise ValueError(f"image_sizes must be one (width, height) of whole pixels per image ({n}, 2), "
                         f"got an array of shape {array.shape}")
    array = array.astype(np.int64)
    bad = (array < 1).any(axis=1) | (array[:, 0] > canvas_width) | (array[:, 1] > canvas_height)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"image {i} has size {array[i, 0]}x{array[i, 1]}; each image lies in the "
                         f"{canvas_width}x{canvas_height} pixels of the pool's array, at least 1x1")
    full = (array[:, 0] == canvas_width) & (array[:, 1] == canvas_height)
    return None if full.all() else array


def pool_boxes(y, shape, sizes, labels) -> tuple[np.ndarray | None, list | None, np.ndarray | None]:
    """A boxes pool's ground truth `y` (None: none), its classes and its images' own sizes
    (`checked_sizes`), for images padded to an array of `shape` (N, H, W[, C])."""
    sizes = checked_sizes(sizes, shape[0], shape[1], shape[2])
    if y is None:
        return None, labels, sizes
    own = np.tile([shape[2], shape[1]], (shape[0], 1)) if sizes is None else sizes
    return (*ground_truth_boxes(y, own, labels), sizes)


def ground_truth_boxes(y, sizes, labels: Sequence[str] | None,
                       what: str = "y") -> tuple[np.ndarray, list[str]]:
    """A boxes pool's ground truth (a list of box lists, one per image) as an object array of
    BoxLists, and the classes: `labels` as given, else those found, sorted. `sizes` is each
    image's (width, height), (n_images, 2). A ValueError naming the image (`what[i]`) and its
    size for a row that is not a valid box list of it."""
    rows, n_images = list(y), len(sizes)
    if len(rows) != n_images:
        raise ValueError(f"{what} has {len(rows)} box lists for {n_images} images; expected one per image")
    if labels is None:
        found = set()
        for row in rows:
            if isinstance(row, (Sequence, np.ndarray)) and not isinstance(row, (str, bytes)):
                for raw in row:
                    try:
                        found.add(str(_fields(raw, 0)[4]))
                    except ValueError:  # told with its row below
                        continue
        labels = sorted(found)
    labels = [str(c) for c in labels]
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        try:
            out[i] = box_list(row, int(sizes[i][0]), int(sizes[i][1]), labels)
        except ValueError as e:
            raise ValueError(f"{what}[{i}]: {e}") from None
    return out, labels
