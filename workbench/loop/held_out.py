"""What a session's accuracy is measured on: data the strategy did not choose.

A held-out test split when the pool has one (or `Session(test=...)` gives one), otherwise the
random audit sample (`workbench.learn.queue`), whose labels are kept out of training.
"""

from __future__ import annotations

import numpy as np

from workbench.data.boxes import image_sizes
from workbench.data.pool import Pool
from workbench.data.tasks import BOXES, MULTI_LABEL, SPANS, ground_truth_sets, indicator
from workbench.learn.learners import features_for
from workbench.learn.metrics import multi_label_scores
from workbench.learn.metrics import scores as metric_scores
from workbench.learn.model import aligned, class_columns

MIN_AUDIT = 5  # audit labels below this measure nothing


def held_out_split(test, pool: Pool) -> tuple[np.ndarray, np.ndarray] | None:
    """A held-out split as (X, y): `test` given as a Pool with ground truth or as a pair,
    else the pool's own test split, else None."""
    if test is None:
        return None if pool.X_test is None else (pool.X_test, pool.y_test)
    if isinstance(test, Pool):
        if not test.has_ground_truth:
            raise ValueError(f"test pool {test.name!r} has no ground truth labels to score against")
        if pool.task == SPANS:  # a tagger reads the texts, and is scored on their spans
            if test.task != SPANS:
                raise ValueError(f"test pool {test.name!r} is a {test.task!r} pool; a spans session "
                                 "is scored on Pool.from_texts(texts, y=spans, task='spans')")
            return test.items["text"].tolist(), test.y
        if pool.task == BOXES:  # a detector reads the images, and is scored on their boxes
            return _box_test(test, pool)
        return _shaped_like(test.X, pool, f"test pool {test.name!r}"), test.y
    try:
        X, y = test
    except (TypeError, ValueError):
        raise ValueError(f"test must be a Pool with ground truth or a pair (X, y), got {type(test).__name__}"
                         ) from None
    if pool.task == SPANS:
        raise ValueError("a spans session takes its test texts as a Pool: "
                         "test=Pool.from_texts(texts, y=spans, task='spans')")
    if pool.task == BOXES:
        raise ValueError("a boxes session takes its test images as a Pool: "
                         "test=Pool.from_arrays(images, y=boxes, task='boxes')")
    X = np.asarray(X, dtype=np.float32)
    if pool.task == MULTI_LABEL:
        y, found = ground_truth_sets(y, "test y")
        unknown = sorted(set(map(str, found)) - set(map(str, pool.classes or found)))
        if unknown:
            raise ValueError(f"test y names classes {unknown} that are not among the pool's "
                             f"classes {pool.classes}")
    else:
        y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"test X has {len(X)} rows but y has {len(y)} labels")
    return _shaped_like(X, pool, "test X"), y


def _shaped_like(X, pool: Pool, what: str):
    """`X` if its items are the shape of the pool's (else the first round would fail on it,
    or, for images of another size, score the model on what it cannot read)."""
    mine, pools = tuple(np.shape(X)[1:]), tuple(pool.X.shape[1:])
    if pool.kind != "text" and mine != pools:
        raise ValueError(f"{what} has items of shape {mine}; the pool's items are {pools}")
    return X


class BoxTest(tuple):
    """A boxes session's held-out images as (X, y): X the test images padded (bottom, right) to
    the pool's canvas, so the detector reads them at the scale it reads the pool at, y their
    BoxLists; `sizes` each test image's own (width, height), (N, 2), what its boxes are cut to."""

    def __new__(cls, X, y, sizes):
        self = super().__new__(cls, (X, y))
        self.sizes = sizes
        return self


def _box_test(test: Pool, pool: Pool) -> BoxTest:
    """A boxes pool's test pool as a BoxTest; a ValueError for one that is not a boxes pool of
    images that fit in the pool's canvas, with its channels, and of the pool's classes."""
    height, width = pool.X.shape[1:3]
    sizes = image_sizes(test) if test.task == BOXES and test.kind == "image" else None
    if sizes is None or test.X.shape[3:] != pool.X.shape[3:] or (sizes[:, 0] > width).any() \
            or (sizes[:, 1] > height).any():
        largest = "" if sizes is None else f" up to {sizes[:, 0].max()}x{sizes[:, 1].max()} pixels"
        raise ValueError(f"test pool {test.name!r} is a {test.task!r} pool of images{largest} "
                         f"{test.X.shape[1:]}; a boxes session on images {pool.X.shape[1:]} (up to "
                         f"{width}x{height} pixels, width x height) is scored on "
                         "Pool.from_arrays(images, y=boxes, task='boxes') of images that fit in that "
                         "size, with as many channels")
    # a box of a class the session does not detect would be left out of every score:
    # a test set of other classes would read as perfect precision and recall
    known = None if pool.classes is None else set(map(str, pool.classes))
    if known is not None and (unknown := sorted({b.label for bs in test.y for b in bs} - known)):
        raise ValueError(f"test pool {test.name!r} has boxes of classes {unknown} that are not "
                         f"among the pool's classes {pool.classes}")
    X = test.X
    if X.shape[1:] != pool.X.shape[1:]:  # padded to the pool's canvas: all beyond each image is 0
        X = np.zeros((len(test), *pool.X.shape[1:]), np.float32)
        h, w = min(height, test.X.shape[1]), min(width, test.X.shape[2])
        X[:, :h, :w] = test.X[:, :h, :w]
    return BoxTest(X, test.y, sizes)


def held_out(session, labels: dict, audit: set[str]) -> tuple[np.ndarray | None, list, str]:
    """What accuracy is measured on: (the labeled audit items' pool positions, or None for
    the test split; their true labels; in words)."""
    if session.test is not None:
        return None, list(session.test[1]), f"held-out test split ({len(session.test[1])} items)"
    audited = [i for i in audit if i in labels]
    return (session.pool.positions(audited), [str(labels[i]) for i in audited],
            f"random audit sample ({len(audited)} items)")


def scores_of(session, truth: list, predicted: list) -> dict:
    """The scores of predicted labels (classes, or sets of them) against the true ones, as
    `evaluate` gives them; an empty `truth` gives the scores of nothing (nan)."""
    if session.task != MULTI_LABEL:
        return metric_scores(truth, predicted)
    names = session.class_names
    return multi_label_scores(indicator(truth, names), indicator(predicted, names), names)


def evaluate(session, learner, labels: dict, audit: set[str]) -> tuple[dict, str, int]:
    """Accuracy, macro-F1, balanced accuracy and recall per class (workbench.learn.metrics)
    on data the strategy did not choose; with what it was measured on, and on how many."""
    positions, truth, what = held_out(session, labels, audit)
    multi = session.task == MULTI_LABEL
    if positions is None:
        X = session.inputs.test_features(session.test[0])
    elif len(truth) < MIN_AUDIT:
        none = (multi_label_scores(np.zeros((0, 1)), np.zeros((0, 1)), []) if multi
                else metric_scores([], []))
        return none, f"audit sample too small ({len(truth)} of {MIN_AUDIT} needed)", len(truth)
    else:
        X = session.inputs.features()[positions]
    if not multi:
        pred = learner.predict(features_for(learner, X))
        return metric_scores(truth, pred), what, len(truth)
    names = session.class_names  # the learner's columns may be its own classes, in its order
    proba = aligned(learner.predict_proba(features_for(learner, X)),
                    class_columns(learner.classes_, names), len(names))
    pred = proba >= getattr(learner, "threshold", 0.5)
    return multi_label_scores(indicator(truth, names), pred, names), what, len(truth)
