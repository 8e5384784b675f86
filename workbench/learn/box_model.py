"""A boxes model as a user holds it: images in, the boxes of each image out.

`BoxModel` is what `workbench.load_model` returns for a bundle of a boxes session (and what
`session.export` writes one from): the fitted detector (`workbench.learn.box_detector`), the
classes in the session's order, and the input signature (`workbench.learn.model`), which
reads a Pool, an array (N, H, W) or (N, H, W, C) of floats in [0, 1] (whole numbers are raw
pixels, divided by the pool's `image_scale`), or image file paths, the way the pool was read.

`predict_boxes(images)` gives one `ScoredBoxList` per image: a `workbench.BoxList` (the boxes
at the detector's threshold, in reading order, exactly what a session suggests for the
image) that also carries each box's score. `detections(images)` gives every candidate box
(x, y, w, h, label, score), as `BoxDetector.predict_boxes` does, and `maps(images)` the
network's output maps, which is what the bundle's model.onnx computes.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.data.boxes import BoxList, box_list
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
    BoxList a session suggests: those scored `threshold` or above, in reading order, a box that
    rounds to nothing or to one already kept left out; with their scores."""
    kept, scores = [], {}
    for x, y, w, h, label, score in detections:
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
        """`items` as float32 images (N, H, W) or (N, H, W, C), the pool's shape; a ValueError
        naming what was given and what is expected for anything else."""
        return self.signature.features(items)

    def detections(self, items, min_score: float = CANDIDATE_SCORE) -> list[list[tuple]]:
        """Every candidate box of each image, (x, y, w, h, label, score) with score >= min_score,
        by descending score: `BoxDetector.predict_boxes`, what a round scores by mAP@0.5."""
        X = self.images(items)
        return self.detector.predict_boxes(X, _score(min_score, "min_score")) if len(X) else []

    def predict_boxes(self, items, threshold: float | None = None) -> list[ScoredBoxList]:
        """One ScoredBoxList per image: its boxes scored `threshold` (default: the detector's)
        or above, in reading order, with their scores; what a session suggests for it."""
        threshold = self.threshold if threshold is None else _score(threshold, "threshold")
        X = self.images(items)
        if not len(X):
            return []
        height, width = X.shape[1:3]
        return [scored_boxes(found, width, height, self.classes, threshold)
                for found in self.detector.predict_boxes(X, threshold)]

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


def _score(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)
