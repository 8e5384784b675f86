"""The label widget in a boxes session (`task == "boxes"`): what it sends the browser about an
image and its boxes, and how it reads the boxes the browser sends back.

Boxes are in image pixels both ways (`x`, `y` the top-left corner, `w`, `h` the size, the origin
at the image's top-left), the same numbers the store holds: the browser draws the image scaled
up, but its boxes over it in an SVG whose viewBox is the image's own pixels, so nothing is
converted here. What the browser needs besides the image's rendering is its size in pixels
(`width`, `height`: the viewBox, and where a box may lie).

A boxes label in the browser is a list of `[x, y, w, h, label]` (ordered as the store orders
them); `[]` says the image holds no object. Everything the browser sends is checked here and by
`workbench.data.boxes.box_list` (inside the image, a positive size, a class of the pool, no box
twice) before the session sees it, so a bad list writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from workbench.data.boxes import BoxList, box_list, image_size
from workbench.data.tasks import BOXES


def is_boxes(session) -> bool:
    return getattr(session, "task", None) == BOXES


def size_of(session, item_id: str) -> tuple[int, int]:
    """(width, height) in pixels of item `item_id`'s own image (in a pool of images of different
    sizes, not the canvas they are padded to: the browser shows the image at its own size)."""
    return image_size(session.pool, str(item_id))


def box_fields(session, item_id: str) -> dict:
    """What a boxes item carries besides its rendering: its image's size in pixels, which the
    browser's SVG counts in; {} when there is none (its rendering says why)."""
    try:
        width, height = size_of(session, item_id)
    except Exception:  # the rendering carries the reason; the item can still be skipped
        return {}
    return {"width": width, "height": height}


def _number(v):
    """A coordinate for JSON: whole numbers stay whole, numpy scalars become Python's."""
    v = v.item() if hasattr(v, "item") else v
    return v if isinstance(v, int) else float(v)


def boxes_to_browser(session, label, item_id: str) -> list[list] | None:
    """A boxes label (a BoxList, or the JSON the store holds) as the browser gets it: a list of
    `[x, y, w, h, label]` in image pixels. None for no label (or anything that is no box list of
    this image: nothing the browser could pre-annotate)."""
    if label is None:
        return None
    try:
        width, height = size_of(session, item_id)
        boxes = label if isinstance(label, BoxList) else box_list(
            label, width, height, session.class_names)
    except (ValueError, KeyError):
        return None
    return [[_number(b.x), _number(b.y), _number(b.w), _number(b.h), str(b.label)] for b in boxes]


def boxes_from_browser(session, value, item_id: str) -> BoxList:
    """The BoxList the browser's boxes name (image pixels); a ValueError saying what was expected
    for anything else, and for boxes the pool refuses (outside the image, of no size, a class it
    does not have, the same box twice)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"a boxes label is a list of [x, y, w, h, label] boxes (image pixels; [] "
                         f"when the image holds no object), got {type(value).__name__} {value!r} "
                         f"for item {item_id!r}")
    width, height = size_of(session, item_id)
    for i, raw in enumerate(value):
        if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Sequence) or len(raw) != 5:
            raise ValueError(f"box {i} of item {item_id!r} is {raw!r}; a box from the browser is "
                             "[x, y, w, h, label] (image pixels)")
        for what, v in zip(("x", "y", "w", "h"), raw[:4]):
            # a whole number past a float's range (JSON's 1e400 written out) is no pixel either,
            # and math.isfinite would raise OverflowError on it
            if isinstance(v, bool) or not isinstance(v, (int, float)) or abs(v) > 1e12 \
                    or not math.isfinite(v):
                raise ValueError(f"box {i} of item {item_id!r} {list(raw)!r}: {what} {v!r} is not a "
                                 f"number of pixels of its {width}x{height} image")
        if not isinstance(raw[4], str):
            raise ValueError(f"box {i} of item {item_id!r} {list(raw)!r}: its label {raw[4]!r} is not "
                             f"a class name (one of {list(session.class_names)})")
    try:
        return box_list([list(raw) for raw in value], width, height, session.class_names)
    except ValueError as e:
        raise ValueError(f"the boxes of item {item_id!r}: {e}") from None
