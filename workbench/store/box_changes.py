"""Label history of a "boxes" store (workbench.data.boxes): what changed inside one image's box
list, a three-way merge of it, and the check of a merge resolution.

The store holds an image's label as `str(BoxList)`, `{"v": 1, "boxes": [[12, 30, 20, 24, "3"]]}`;
it has no image, so a box is checked only for what it can be checked without one (finite
numbers, `0 <= x`, `0 <= y`, a positive width and height), not for reaching past the image's
right or bottom edge. A box that was moved or resized is the same object still: the boxes one
side removed and added are paired by intersection over union (IoU >= 0.5, the best pairs
first; a pair keeps its label, or its geometry when relabeled), so "moved" reads as one change,
not as a removal and an addition. A side's edits are its changes grouped where they overlap
(IoU > 0: a pair is one edit, and so is a box replaced by two that cover it). Two sides merge
when every edit of one is either the same as an edit of the other or overlaps none of the
other's; anything else is a conflict the user resolves.

The store knows nothing of pools (the import contract in pyproject.toml), so the format is
read and written here as `workbench.data.boxes` defines it: `str(BoxList)`, schema version 1,
whole numbers kept whole and others rounded to 1/100 pixel, ordered by (y, x, h, w, class).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from workbench.store.part_merge import merge_parts

SCHEMA_VERSION = 1  # workbench.data.boxes.SCHEMA_VERSION
FIELDS = ("x", "y", "w", "h", "label")
SAME_OBJECT = 0.5  # the IoU at which a removed and an added box are one box changed
EXAMPLE = f'{{"v": {SCHEMA_VERSION}, "boxes": [[12, 30, 20, 24, "3"]]}}'


class Box(NamedTuple):
    """A rectangle `w` x `h` pixels from its top-left corner (x, y), marked `label`
    (workbench.data.boxes.Box)."""

    x: float
    y: float
    w: float
    h: float
    label: str


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 when they do not overlap."""
    return float(iou_matrix([a], [b])[0, 0])


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """(len(a), len(b)) intersection over union of every box of `a` with every box of `b`, 0
    where they do not overlap. (workbench.data.box_scores.iou_matrix computes the same for the
    data layer, which the store may not import.)"""
    A = np.array([[q.x, q.y, q.x + q.w, q.y + q.h] for q in a], dtype=float).reshape(-1, 4)
    B = np.array([[q.x, q.y, q.x + q.w, q.y + q.h] for q in b], dtype=float).reshape(-1, 4)
    low, high = np.maximum(A[:, None, :2], B[None, :, :2]), np.minimum(A[:, None, 2:], B[None, :, 2:])
    across, down = np.clip(high - low, 0, None).transpose(2, 0, 1)
    inter = across * down
    area_a, area_b = (A[:, 2] - A[:, 0]) * (A[:, 3] - A[:, 1]), (B[:, 2] - B[:, 0]) * (B[:, 3] - B[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def overlap_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """Which boxes of `a` overlap which of `b` (a shared area more than 0): part_merge's test."""
    return iou_matrix(a, b) > 0


def greedy_pairs(overlap: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(i, j, overlap) pairs of rows and columns of `overlap` at `threshold` or more, the best
    first (ties by i, then j), each row and each column in at most one pair."""
    rows, cols = np.nonzero(overlap >= threshold)
    used_rows, used_cols, out = set(), set(), []
    for k in np.lexsort((cols, rows, -overlap[rows, cols])):
        i, j = int(rows[k]), int(cols[k])
        if i not in used_rows and j not in used_cols:
            used_rows.add(i)
            used_cols.add(j)
            out.append((i, j, float(overlap[i, j])))
    return out


def dump(boxes: Iterable[Box]) -> str:
    """The store's label for these boxes (in the order given): `str(BoxList)`."""
    return json.dumps({"v": SCHEMA_VERSION, "boxes": [list(b) for b in boxes]}, ensure_ascii=False)


def stored_boxes(value, labels: Sequence[str] | None = None) -> tuple[Box, ...]:
    """The boxes of a store label (its JSON, either schema: the versioned object or a bare list
    of `[x, y, w, h, label]`) or of a list of boxes (lists, tuples or dicts), in canonical order.
    A ValueError naming the value and the box for anything that is not one: another schema
    version or fields besides "v" and "boxes", a coordinate that is not a finite number (a
    bool is not one), a negative x or y, a width or height not more than 0, a label not among
    `labels` (when given), the same box twice."""
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: a list nested thousands deep
            raise ValueError(f"{value!r} is not the JSON of a box list (e.g. {EXAMPLE})") from None
        if isinstance(data, dict):
            version, extra = data.get("v"), sorted(set(data) - {"v", "boxes"})
            if type(version) is not int or version != SCHEMA_VERSION or \
                    not isinstance(data.get("boxes"), list):
                raise ValueError(f"{value!r} is not a box list of schema version {SCHEMA_VERSION} "
                                 f'({{"v": {SCHEMA_VERSION}, "boxes": [[x, y, w, h, label], ...]}})')
            if extra:
                raise ValueError(f"{value!r} has fields {extra} besides \"v\" and \"boxes\"; schema "
                                 f"version {SCHEMA_VERSION} has no others")
            data = data["boxes"]
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, (Sequence, np.ndarray)):
        raise ValueError(f"{value!r} is not a list of [x, y, w, h, label] boxes (e.g. {EXAMPLE})")
    boxes = canonical((_box(raw, value, labels) for raw in data), labels)
    for a, b in zip(boxes, boxes[1:]):
        if a == b:
            raise ValueError(f"{value!r} gives box {list(a)!r} twice")
    return boxes


def _box(raw, value, labels: Sequence[str] | None) -> Box:
    if isinstance(raw, Mapping):
        if extra := [k for k in raw if k not in FIELDS]:
            raise ValueError(f"{value!r}: box {dict(raw)!r} has keys {extra} besides x, y, w, h and label")
        if missing := [k for k in FIELDS if k not in raw]:
            raise ValueError(f"{value!r}: box {dict(raw)!r} has no {', '.join(missing)}")
        raw = tuple(raw[k] for k in FIELDS)
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, np.ndarray)) or len(raw) != 5:
        raise ValueError(f"{value!r}: box {raw!r} is not [x, y, w, h, label] (top-left corner, width "
                         "and height in image pixels, class)")
    shown = [v.item() if isinstance(v, np.generic) else v for v in raw]  # numpy numbers too
    for number, what in zip(shown[:4], FIELDS):
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not _finite(number):
            raise ValueError(f"{value!r}: box {shown!r} has {what} {number!r}, not a finite number "
                             "(image pixels)")
    x, y, w, h = (v if isinstance(v, int) else round(float(v), 2) + 0.0 for v in shown[:4])  # no -0.0
    label = shown[4]
    if x < 0 or y < 0:
        raise ValueError(f"{value!r}: box {shown!r} needs x >= 0 and y >= 0 (its top-left corner "
                         "inside the image)")
    if w <= 0 or h <= 0:
        raise ValueError(f"{value!r}: box {shown!r} needs a width and height more than 0 pixels")
    if not isinstance(label, str):
        raise ValueError(f"{value!r}: box {shown!r} has label {label!r}, not a string")
    if labels is not None and label not in labels:
        raise ValueError(f"{value!r}: box {shown!r} has label {label!r}, which is not among the "
                         f"classes {list(labels)}")
    return Box(x, y, w, h, label)


def _finite(number: int | float) -> bool:
    """A real number a float holds (a whole number past 1e308 is not one: it overflows)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def canonical(boxes: Iterable[Box], labels: Sequence[str] | None = None) -> tuple[Box, ...]:
    """The boxes sorted as a BoxList is: by y, x, h, w, then the order of `labels` (labels not
    among them after, by name)."""
    order = {name: i for i, name in enumerate(labels or [])}
    return tuple(sorted(boxes, key=lambda b: (b.y, b.x, b.h, b.w, order.get(b.label, len(order)), b.label)))


def parse(value) -> tuple[Box, ...] | None:
    """The boxes of a store label (None: no label, read as no boxes), or None when the value is
    not a box list."""
    if value is None:
        return ()
    if not (isinstance(value, str) and value.lstrip().startswith(("{", "["))):
        return None
    try:
        return stored_boxes(value)
    except ValueError:
        return None


def pairs(removed: Sequence[Box], added: Sequence[Box]) -> list[tuple[Box, Box]]:
    """The removed and added boxes that are one box changed: IoU >= 0.5 with the same label (moved
    or resized) or the same geometry (relabeled), the best pairs first, each box in one pair."""
    if not removed or not added:
        return []
    same = (np.array([r.label for r in removed], dtype=object)[:, None]
            == np.array([a.label for a in added], dtype=object)[None, :])
    geometry = np.array([r[:4] for r in removed], dtype=float)
    same |= (geometry[:, None, :] == np.array([a[:4] for a in added], dtype=float)[None, :, :]).all(axis=2)
    overlap = np.where(same, iou_matrix(removed, added), 0.0)
    return [(removed[i], added[j]) for i, j, _ in greedy_pairs(overlap, SAME_OBJECT)]


def _num(v) -> str:
    """A coordinate as the store holds it (whole numbers whole, others to 1/100 pixel)."""
    return str(v) if isinstance(v, int) else f"{v:.2f}".rstrip("0").rstrip(".")


def _where(b: Box) -> str:
    return f"{_num(b.x)},{_num(b.y)} {_num(b.w)}x{_num(b.h)}"


def _change(r: Box, a: Box) -> str:
    if r[:4] == a[:4]:
        return f"box {_where(r)} {r.label} -> {a.label}"
    how = ("resized" if (r.x, r.y) == (a.x, a.y) else
           "moved" if (r.w, r.h) == (a.w, a.h) else "moved and resized")
    return f"box {_where(r)} {r.label} {how} to {_where(a)}"


def inside(before, after) -> str | None:
    """What changed inside an image's box list, in words: `box 12,30 20x24 3 -> 5` (relabeled),
    `box 12,30 20x24 3 moved to 14,30 20x24` (or resized, or moved and resized),
    `+box 40,8 16x20 7`, `-box 40,8 16x20 7`, top to bottom, then left to right; None when a
    side is not a box list (or neither side is one)."""
    if before is None and after is None:
        return None
    was, now = parse(before), parse(after)
    if was is None or now is None:
        return None
    kept_before, kept_after = set(was), set(now)
    removed = [b for b in was if b not in kept_after]
    added = [b for b in now if b not in kept_before]
    words = []  # (where, phrase)
    paired = pairs(removed, added)
    for r, a in paired:
        words.append(((r.y, r.x), _change(r, a)))
    moved_from, moved_to = {r for r, _ in paired}, {a for _, a in paired}
    words += [((b.y, b.x), f"+box {_where(b)} {b.label}") for b in added if b not in moved_to]
    words += [((b.y, b.x), f"-box {_where(b)} {b.label}") for b in removed if b not in moved_from]
    return ", ".join(phrase for _, phrase in sorted(words, key=lambda w: w[0]))


def merge_boxes(base, ours, theirs, classes: Sequence[str] | None = None) -> str | None:
    """The three-way merge of an image's box list (store labels): every edit either side made
    since `base`, when no edit of one side overlaps (IoU > 0) a different edit of the other (an
    edit both sides made counts once), as the canonical `str(BoxList)` (`dump`); None for a
    conflict (edits that overlap, a side with no label, an image unlabeled in `base`, a value
    that is not a box list)."""
    if ours == theirs:
        return ours
    if base is None or ours is None or theirs is None:
        return None
    lists = [parse(value) for value in (base, ours, theirs)]
    if any(boxes is None for boxes in lists):
        return None
    merged = merge_parts(*(set(boxes) for boxes in lists), overlap_matrix)
    if merged is None:
        return None
    return dump(canonical(merged, classes))

