"""What a multi-label model's card says in place of one class per item's: the model gives
each class its own probability and an item any subset of the classes, so a card has no
confusion matrix. It gives, per class, how many labels include it; the held-out figures of
`workbench.learn.metrics.multi_label_scores` with 95% intervals (micro-F1 and macro-F1 by a
seeded bootstrap, the accuracy of whole sets by Wilson), the Hamming loss and each class's
recall and precision; and a training curve of micro-F1 beside the rest.

`multi_label_parts(...)` gives them as `workbench.loop.model_card.model_card` takes them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from workbench.loop.model_card import _cell, _code, _pct, _range

__all__ = ["label_counts", "multi_label_intervals", "multi_label_parts"]


def multi_label_parts(model, *, training: dict, labels: pd.DataFrame, truth, predicted,
                      history: pd.DataFrame) -> dict:
    """`truth`, `predicted`: 0/1 matrices, held-out items x `model.classes` (as text)."""
    classes = [str(c) for c in model.classes]
    threshold = float(getattr(model, "threshold", 0.5))
    truth, predicted = _matrix(truth, classes), _matrix(predicted, classes)
    ci = multi_label_intervals(truth, predicted)
    return {
        "what": f"A {type(model.learner).__name__} that gives {model.signature.kind} items any of "
                f"{len(classes)} classes (none, one or several): "
                f"{', '.join(_code(c) for c in classes)}. Each class has its own probability "
                f"(they need not sum to 1) and applies from {threshold:g}.",
        "per_class": label_counts(labels, classes),
        "per_class_heading": "labels that include it",
        "quality": [
            f"- Micro-F1: {_pct(training.get('micro_f1'))} (95% interval {_range(ci['micro_f1'])}, "
            "bootstrap of 1,000 resamples): F1 over every item-class decision",
            f"- Macro-F1: {_pct(training.get('macro_f1'))} (95% interval {_range(ci['macro_f1'])}, "
            "bootstrap): the mean of each class's F1",
            f"- Hamming loss: {_pct(training.get('hamming_loss'))} of the item-class decisions wrong",
            f"- Accuracy (the whole set right): {_pct(training.get('accuracy'))} (95% interval "
            f"{_range(ci['accuracy'])}, Wilson)",
            "", *_per_class(truth, predicted, classes)],
        "curve": _curve(history),
        "decode": f"print([[c for c, p in zip(classes, row) if p >= {threshold:g}] for row in proba])"}


def label_counts(labels: pd.DataFrame, classes: list[str]) -> pd.Series:
    """How many labels include each class (a label is a set: the store's JSON list)."""
    counts = dict.fromkeys(classes, 0)
    for value in labels["label"]:
        for c in json.loads(value) if isinstance(value, str) else value:
            if str(c) in counts:
                counts[str(c)] += 1
    return pd.Series(counts, dtype=int)


def multi_label_intervals(truth, predicted, *, seed: int = 0, resamples: int = 1000) -> dict:
    """95% intervals: a percentile bootstrap over items (seeded) for micro-F1 and macro-F1
    (classes present in each resample's truth), Wilson for the accuracy of whole sets."""
    from scipy.stats import binomtest

    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    n = len(truth)
    if n == 0:
        return {k: (np.nan, np.nan) for k in ("micro_f1", "macro_f1", "accuracy")}
    ci = binomtest(int((truth == predicted).all(axis=1).sum()), n).proportion_ci(0.95, method="wilson")
    draw = np.random.default_rng(seed).integers(0, n, (resamples, n))
    hit = np.stack([(truth & predicted)[d].sum(0) for d in draw]).astype(float)
    actual = np.stack([truth[d].sum(0) for d in draw]).astype(float)
    said = np.stack([predicted[d].sum(0) for d in draw]).astype(float)
    total = actual.sum(1) + said.sum(1)
    micro = np.where(total > 0, 2 * hit.sum(1) / np.maximum(total, 1), 1.0)
    f1 = np.where(actual + said > 0, 2 * hit / np.maximum(actual + said, 1), 0.0)
    f1 = np.where(actual > 0, f1, np.nan)
    present = (actual > 0).any(1)
    macro = np.full(resamples, np.nan)
    macro[present] = np.nanmean(f1[present], axis=1)
    macro = macro[present]
    return {"micro_f1": tuple(np.percentile(micro, [2.5, 97.5])),
            "macro_f1": tuple(np.percentile(macro, [2.5, 97.5])) if len(macro) else (np.nan, np.nan),
            "accuracy": (ci.low, ci.high)}


def _matrix(values, classes: list[str]) -> np.ndarray:
    return np.asarray(values).reshape(-1, len(classes))


def _per_class(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> list[str]:
    if len(truth) == 0:
        return ["No held-out data: no figures per class."]
    truth, predicted = truth.astype(bool), predicted.astype(bool)
    rows = ["Per class (held-out items that have it, that the model gives it, recall, precision):",
            "", "| class | have it | given it | recall | precision |", "|---|---|---|---|---|"]
    for j, c in enumerate(classes):
        have, given = int(truth[:, j].sum()), int(predicted[:, j].sum())
        hit = int((truth[:, j] & predicted[:, j]).sum())
        rows.append(f"| {_cell(c)} | {have} | {given} | {_pct(hit / have if have else np.nan)} | "
                    f"{_pct(hit / given if given else np.nan)} |")
    return rows


def _curve(history: pd.DataFrame) -> list[str]:
    if history is None or history.empty:
        return ["No training rounds recorded."]
    rows = ["| round | labels | micro-F1 | macro-F1 | Hamming loss | accuracy (whole set) |",
            "|---|---|---|---|---|---|"]
    for _, r in history.iterrows():
        rows.append(f"| {r['round']} | {r['n_labels']} | {_pct(r.get('micro_f1'))} | "
                    f"{_pct(r.get('macro_f1'))} | {_pct(r.get('hamming_loss'))} | "
                    f"{_pct(r.get('accuracy'))} |")
    return rows
