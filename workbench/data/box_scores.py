"""How good predicted boxes are against true ones: intersection over union, mAP@0.5, and
precision / recall at the score a suggestion is shown at.

A box is `(x, y, w, h, label)` (top-left corner, width, height, in image pixels); a
predicted box adds its score: `(x, y, w, h, label, score)`. Only the first four numbers
matter to `iou`, so Box NamedTuples, plain tuples and lists all work.

mAP@0.5 is the PASCAL VOC measure (2010 on): per class, every predicted box of that class
over all images, by descending score, is a true positive when it overlaps (IoU >= 0.5) a
truth box of its class in its image that no higher-scored box matched yet - the best such
by IoU - and a false positive otherwise, so a duplicate of a found box counts against the
model. AP is the area under the precision-recall curve with precision made monotone
("all-point interpolation"); mAP is the mean of AP over the classes present in the truth
(a class nobody drew has no recall to measure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["box_scores", "iou", "iou_matrix"]

IOU_THRESHOLD = 0.5  # the VOC threshold: a predicted box this close to a true one found it
SCORE_THRESHOLD = 0.5  # precision / recall count the boxes a suggestion would show


def iou(a, b) -> float:
    """Intersection over union of two boxes `(x, y, w, h, ...)`; 0 when they do not touch."""
    return float(iou_matrix([a], [b])[0, 0])


def _corners(boxes) -> np.ndarray:
    """(n, 4) array of x0, y0, x1, y1 from boxes (x, y, w, h, ...)."""
    xywh = np.array([[float(v) for v in box[:4]] for box in boxes], dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def iou_matrix(A: Sequence, B: Sequence) -> np.ndarray:
    """(len(A), len(B)) intersection over union of every box of A with every box of B."""
    a, b = _corners(A), _corners(B)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out


def _match(truth: Sequence, predicted: Sequence) -> np.ndarray:
    """Which of `predicted` (one image, one class, by descending score) are true positives:
    greedy, each truth box taken at most once, by the best IoU >= 0.5 among those left."""
    hits = np.zeros(len(predicted), dtype=bool)
    if not len(truth) or not len(predicted):
        return hits
    overlap = iou_matrix(predicted, truth)
    taken = np.zeros(len(truth), dtype=bool)
    for i in range(len(predicted)):
        row = np.where(taken, -1.0, overlap[i])
        j = int(row.argmax())
        if row[j] >= IOU_THRESHOLD:
            taken[j] = hits[i] = True
    return hits


def _average_precision(hits: np.ndarray, n_truth: int) -> float:
    """VOC all-point interpolated AP from the hits of predictions ranked by descending score."""
    if n_truth == 0:
        return math.nan
    tp = np.cumsum(hits)
    recall = tp / n_truth
    precision = tp / np.arange(1, len(hits) + 1)
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # the best precision at this recall or beyond
    step = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[step + 1] - r[step]) * p[step + 1]))


def _by_label(boxes: Sequence, label: str) -> list:
    return [b for b in boxes if str(b[4]) == label]


def box_scores(truth: Sequence[Sequence], predicted: Sequence[Sequence], labels=None) -> dict:
    """Score predicted boxes against the truth, image by image.

    truth: one list per image of `(x, y, w, h, label)`; predicted: one list per image of
    `(x, y, w, h, label, score)`, in the same order. `labels`: the classes to score (None:
    every label in either); boxes of other labels are left out of every number.

    Returns {"map50": mean AP over the classes present in the truth (nan when the truth has
    no box), "ap": {label: AP@0.5} for those classes, "precision", "recall"}, where precision
    and recall count the predicted boxes with score >= 0.5 (a box of the wrong class is a
    false positive, and its truth box is missed). With nothing predicted precision is 0
    (1 when the truth is empty too); with no truth box recall is 1 when nothing was predicted,
    else 0."""
    if len(truth) != len(predicted):
        raise ValueError(f"truth has {len(truth)} images but predicted has {len(predicted)}; "
                         "expected one list of boxes per image in both")
    for boxes in predicted:
        for box in boxes:
            if len(box) < 6:
                raise ValueError(f"a predicted box needs (x, y, w, h, label, score); got {tuple(box)!r}")
    if labels is None:
        labels = sorted({str(b[4]) for boxes in (*truth, *predicted) for b in boxes})
    labels = [str(label) for label in labels]
    ap, tp_shown, n_shown, n_truth = {}, 0, 0, 0
    for label in labels:
        true_of = [_by_label(boxes, label) for boxes in truth]
        ranked_of = [sorted(_by_label(boxes, label), key=lambda b: -float(b[5])) for boxes in predicted]
        # Per image the greedy match by score; across images, AP ranks all of them by score.
        scores, hits = [], []
        for t, p in zip(true_of, ranked_of):
            scores.extend(float(b[5]) for b in p)
            hits.extend(_match(t, p))
            shown = [b for b in p if float(b[5]) >= SCORE_THRESHOLD]
            tp_shown += int(_match(t, shown).sum())
            n_shown += len(shown)
        count = sum(len(t) for t in true_of)
        n_truth += count
        if count:
            order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
            ap[label] = _average_precision(np.asarray(hits, dtype=bool)[order], count)
    precision = tp_shown / n_shown if n_shown else float(n_truth == 0)
    recall = tp_shown / n_truth if n_truth else float(n_shown == 0)
    map50 = float(np.mean(list(ap.values()))) if ap else math.nan
    return {"map50": map50, "ap": ap, "precision": float(precision), "recall": float(recall)}
