"""A boxes model as a user holds it: images in, the boxes of each image out.

`BoxModel` is what `workbench.load_model` returns for a bundle of a boxes session (and what
`session.export` writes one from): the fitted detector (`workbench.learn.box_detector`), the
classes in the session's order, and the input signature (`workbench.learn.model`), which
reads a Pool, an array (N, H, W) or (N, H, W, C) of floats in [0, 1] (whole numbers are raw
pixels, divided by the pool's `image_scale`), or image file paths, the way the pool was read.
Image files (and a list of arrays) may be of any size up to the signature's: a smaller image
is padded at the bottom and right with zeros, as a pool of images of different sizes holds
them, and its boxes are cut to its own size (`sized`).

`predict_boxes(images)` gives one `ScoredBoxList` per image: a `workbench.BoxList` (the boxes
at the detector's threshold, in reading order, exactly what a session suggests for the
image) that also carries each box's score. `detections(images)` gives every candidate box
(x, y, w, h, label, score), as `BoxDetector.predict_boxes` does, and `maps(images)` the
network's output maps, which is what the bundle's model.onnx computes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.boxes import BoxList, box_list, clipped, image_sizes
from workbench.data.pool import Pool
from workbench.data.tasks import BOXES
from workbench.learn.box_detector import CANDIDATE_SCORE, _resized, _scale

__all__ = ["BoxModel", "ScoredBoxList", "scored_boxes"]


class ScoredBoxList(BoxList):
    """A BoxList with each box's score: `scores[i]` is the score of `self[i]`. It equals the
    BoxList of the same boxes, and `str()` is the store's JSON of them (scores left out), so
    a prediction can be stored as a label as it is."""

    def __new__(cls, boxes=(), scores=()):
        self = super().__new__(cls, boxes)
        self.scores = tuple(float(s) for s in scores)
        if len(self.scores) != len(self):
            raise ValueError(f"got {len(self)} boxes but {len(self.scores)} scores; expected one "
                             "score per box")
        return self

    def __repr__(self) -> str:
        return f"ScoredBoxList({[(*b, round(s, 4)) for b, s in zip(self, self.scores)]!r})"


def scored_boxes(detections, width: float, height: float, classes, threshold: float) -> ScoredBoxList:
    """A detector's boxes of one image (x, y, w, h, label, score; by descending score) as the
    BoxList a session suggests: those scored `threshold` or above, cut to the image's own
    `width` x `height` (`boxes.clipped`: the detector saw it padded to a larger canvas), in
    reading order, a box that rounds to nothing or to one already kept left out; with their
    scores."""
    kept, scores = [], {}
    for x, y, w, h, label, score in clipped(detections, width, height):
        if score < threshold:
            continue
        try:
            box = box_list([(float(x), float(y), float(w), float(h), str(label))], width, height, classes)[0]
        except ValueError:  # no size left after rounding: nothing to draw
            continue
        if box not in scores:
            kept.append(box)
            scores[box] = float(score)
    ordered = box_list(kept, width, height, classes)
    return ScoredBoxList(ordered, [scores[b] for b in ordered])


class BoxModel:
    """A trained box detector with what it reads.

    detector: the fitted `BoxDetector`; classes: the class names, in the session's order;
    signature: what one image is (`InputSignature`, kind "image"); info: what it was trained
    on (round, n_labels, labels_hash, the commit, ...; a loaded bundle's "training").
    """

    task = BOXES

    def __init__(self, detector, classes, signature, *, info: dict | None = None):
        if signature.kind != "image" or len(signature.shape) not in (2, 3):
            raise ValueError(f"a boxes model reads images (H, W) or (H, W, C); got {signature.describe()}")
        self.detector = detector
        self.classes = [str(c) for c in classes]
        self.signature = signature
        self.info = dict(info or {})

    def __repr__(self) -> str:
        return (f"BoxModel({type(self.detector).__name__}, {len(self.classes)} classes, "
                f"{self.signature.describe()})")

    @property
    def threshold(self) -> float:
        """The score from which a box is shown (the detector's)."""
        return float(getattr(self.detector, "threshold", 0.5))

    def images(self, items) -> np.ndarray:
        """`items` as float32 images (N, H, W) or (N, H, W, C), the pool's shape (smaller ones
        padded: see `sized`); a ValueError naming what was given and what is expected otherwise."""
        return self.sized(items)[0]

    def sized(self, items) -> tuple[np.ndarray, np.ndarray]:
        """`items` as float32 images of the signature's shape, with each one's own (width,
        height), (N, 2): a Pool's (`pool.image_sizes` where its images differ in size), the
        shape's for an array; image files, or a list of arrays, of any size up to the shape's,
        each padded at the bottom and right with zeros as the pool's were. A ValueError naming
        what was given and what is expected otherwise."""
        X, sizes = self._sized(items)
        if X.dtype.kind == "f" and len(X) and not (-1e-6 <= float(X.min()) and float(X.max()) <= 1 + 1e-6):
            # floats in 0..255 read as [0, 1] light up every cell: junk boxes scored 1.0
            raise ValueError(f"got float images with values from {float(X.min()):g} to {float(X.max()):g}; "
                             "this model reads floats in [0, 1] (as its pool's X)"
                             + (f", or whole numbers of raw pixels (uint8), which it divides by "
                                f"{self.signature.image_scale:g}" if self.signature.image_scale else ""))
        return X, sizes

    def _sized(self, items) -> tuple[np.ndarray, np.ndarray]:
        height, width = self.signature.shape[:2]
        if isinstance(items, Pool):
            return self.signature.features(items), image_sizes(items)
        paths = _paths(items)
        if paths is not None:
            from workbench.data.loaders import read_scaled

            if self.signature.image_scale is None:
                return self.signature.features(paths), None  # refused there, saying what to pass
            items = read_scaled(paths, self.signature.image_scale, one_shape=False)
        if isinstance(items, (list, tuple)) and items and all(isinstance(a, np.ndarray) for a in items):
            return self._padded([self.signature._pixels(a) if a.dtype.kind in "biu" else a for a in items])
        X = self.signature.features(items)
        return X, np.tile(np.array([width, height], np.int64), (len(X), 1))

    def _padded(self, arrays: list) -> tuple[np.ndarray, np.ndarray]:
        """Images of sizes up to the signature's, each in the top-left of an array of its shape."""
        shape = tuple(self.signature.shape)
        out = np.zeros((len(arrays), *shape), np.float32)
        sizes = np.zeros((len(arrays), 2), np.int64)
        for i, a in enumerate(arrays):
            given = a.shape
            if a.ndim == 3 and len(shape) == 2 and a.shape[2] == 1:
                a = a[..., 0]
            elif a.ndim == 2 and len(shape) == 3:
                a = a[..., None]  # a greyscale image in every channel of a colour model
            if a.ndim != len(shape) or not (1 <= a.shape[0] <= shape[0] and 1 <= a.shape[1] <= shape[1]) \
                    or (len(shape) == 3 and a.shape[2] not in (1, shape[2])):
                channels = f" x {shape[2]} channels" if len(shape) == 3 else " (greyscale)"
                raise ValueError(f"image {i} has shape {given}; this model reads images of up to "
                                 f"{shape[1]}x{shape[0]} pixels{channels} (width x height; smaller ones "
                                 "are padded, as its pool's were)")
            out[i, :a.shape[0], :a.shape[1]] = a
            sizes[i] = a.shape[1], a.shape[0]
        return self.signature.check(out), sizes

    def detections(self, items, min_score: float = CANDIDATE_SCORE) -> list[list[tuple]]:
        """Every candidate box of each image, (x, y, w, h, label, score) with score >= min_score,
        by descending score: `BoxDetector.predict_boxes`, what a round scores by mAP@0.5 (cut to
        each image's own size, `boxes.clipped`)."""
        X, sizes = self.sized(items)
        if not len(X):
            return []
        found = self.detector.predict_boxes(X, _score(min_score, "min_score"))
        return [clipped(boxes, w, h) for boxes, (w, h) in zip(found, sizes)]

    def predict_boxes(self, items, threshold: float | None = None) -> list[ScoredBoxList]:
        """One ScoredBoxList per image: its boxes scored `threshold` (default: the detector's)
        or above, inside the image's own size, in reading order, with their scores; what a
        session suggests for it."""
        threshold = self.threshold if threshold is None else _score(threshold, "threshold")
        X, sizes = self.sized(items)
        if not len(X):
            return []
        return [scored_boxes(found, w, h, self.classes, threshold)
                for found, (w, h) in zip(self.detector.predict_boxes(X, threshold), sizes)]

    def maps(self, items) -> np.ndarray:
        """The network's output maps for each image, float32 (N, 5 + classes, gh, gw): what the
        bundle's model.onnx gives for the same images (see `box_bundle.OUTPUTS`)."""
        import torch

        X = self.images(items)
        return network_maps(self.detector, X, torch)

    def table(self, ids, items, *, batch: int = 64, progress=None):
        """A DataFrame of one row per box, (item_id, x, y, w, h, label, score), the boxes of
        `predict_boxes`; the images are read `batch` at a time (`progress(n)` after each)."""
        import pandas as pd

        rows = []
        for start in range(0, len(ids), batch):
            found = self.predict_boxes(items[start:start + batch])
            for item_id, boxes in zip(ids[start:start + batch], found):
                rows.extend((str(item_id), *box, score) for box, score in zip(boxes, boxes.scores))
            if progress is not None:
                progress(len(found))
        return pd.DataFrame(rows, columns=["item_id", "x", "y", "w", "h", "label", "score"])


def network_maps(detector, X: np.ndarray, torch, net=None) -> np.ndarray:
    """The detector's network (or `net`, a copy of it elsewhere) on images X (resized to its
    max_side, standardised and padded as it does before decoding), in batches, on the device
    the network is on: float32 maps (N, 5 + classes, gh, gw)."""
    net = detector.net_ if net is None else net
    device = next(net.parameters()).device
    X = X[..., None] if X.ndim == 3 else X
    scale = _scale(X.shape[1:3], detector.max_side)
    out = []
    with torch.inference_mode():
        for start in range(0, len(X), 64):
            part = X[start:start + 64]
            part = _resized(part, scale) if scale < 1 else part
            out.append(net(torch.from_numpy(detector._prepare(part)).to(device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 5 + len(detector.labels_), 0, 0), np.float32)


def _paths(items) -> list[str] | None:
    """The image file paths `items` names (a path, a sequence of them, a DataFrame's "path"
    column), None when it names none."""
    if isinstance(items, (str, Path)):
        return [str(items)]
    if isinstance(items, pd.DataFrame):
        return [str(p) for p in items["path"]] if "path" in items.columns else None
    if isinstance(items, (pd.Series, Sequence, np.ndarray)) and len(items) and \
            all(isinstance(i, (str, Path)) for i in items):
        return [str(p) for p in items]
    return None


def _score(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)
