"""How good a model is, in numbers that do not hide the rare classes.

On imbalanced data (87% of one class) a model that always answers the common class has
87% accuracy. Macro-F1 (the mean over classes of each class's F1) and balanced accuracy
(the mean over classes of each class's recall) weigh every class alike, so they drop to
0.47 and 0.5 there. History rows, charts and simulations report all three, and the recall
of each class is kept too.

Classes are those present in the truth: a class the evaluation sample does not contain
cannot be recalled, and counting it as 0 would punish a small audit sample for its size.
"""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "macro_f1", "balanced_accuracy")


def scores(y_true, y_pred) -> dict:
    """{"accuracy", "macro_f1", "balanced_accuracy", "recall": {class: recall}}; labels are
    compared as text, so 3 and "3" are one class."""
    truth = np.asarray([str(v) for v in np.asarray(y_true, dtype=object)])
    pred = np.asarray([str(v) for v in np.asarray(y_pred, dtype=object)])
    if len(truth) != len(pred):
        raise ValueError(f"y_true has {len(truth)} labels but y_pred has {len(pred)}")
    if len(truth) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"),
                "balanced_accuracy": float("nan"), "recall": {}}
    classes = list(dict.fromkeys(sorted(set(truth))))
    recall, f1 = {}, []
    for c in classes:
        actual, predicted = truth == c, pred == c
        hit = float(np.sum(actual & predicted))
        r = hit / actual.sum()
        p = hit / predicted.sum() if predicted.any() else 0.0
        recall[c] = r
        f1.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return {"accuracy": float(np.mean(truth == pred)), "macro_f1": float(np.mean(f1)),
            "balanced_accuracy": float(np.mean(list(recall.values()))), "recall": recall}


def multi_label_scores(Y_true, Y_pred, class_names) -> dict:
    """For items that may have several classes (0/1 matrices, items x classes): "accuracy"
    (the whole set right), "micro_f1" (F1 over every item-class decision), "macro_f1" (the
    mean of each class's F1), "hamming_loss" (the share of item-class decisions wrong),
    "balanced_accuracy" (the mean of each class's recall) and "recall" per class. Classes are
    those present in the truth, as for one class per item."""
    truth, pred = np.asarray(Y_true, dtype=bool), np.asarray(Y_pred, dtype=bool)
    if truth.shape != pred.shape:
        raise ValueError(f"Y_true has shape {truth.shape} but Y_pred has {pred.shape}")
    if len(truth) == 0:
        return {"accuracy": float("nan"), "micro_f1": float("nan"), "macro_f1": float("nan"),
                "hamming_loss": float("nan"), "balanced_accuracy": float("nan"), "recall": {}}
    hit = (truth & pred).sum(axis=0).astype(float)
    actual, predicted = truth.sum(axis=0).astype(float), pred.sum(axis=0).astype(float)
    present = actual > 0
    recall = {str(class_names[j]): float(hit[j] / actual[j]) for j in np.flatnonzero(present)}
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(actual + predicted > 0, 2 * hit / (actual + predicted), 0.0)
    total = actual.sum() + predicted.sum()
    return {"accuracy": float((truth == pred).all(axis=1).mean()),
            "micro_f1": float(2 * hit.sum() / total) if total else 1.0,
            "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
            "hamming_loss": float((truth != pred).mean()),
            "balanced_accuracy": float(np.mean(list(recall.values()))) if recall else float("nan"),
            "recall": recall}


# -- how sure a measured accuracy is ----------------------------------------------------------
# A headline figure always carries its uncertainty: 5 of 5 audit items right is "somewhere in
# 57-100%", not "100%". Until the 95% interval is narrower than +-HEADLINE_HALF_WIDTH the
# figure is not shown as a point at all. (README: how many audit labels buy what interval.)
HEADLINE_HALF_WIDTH = 0.10
_Z = 1.959963984540054  # the 97.5% normal quantile: a 95% interval


def wilson(correct, n) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion `correct`/`n` (as scipy's
    `binomtest(...).proportion_ci(method="wilson")`, without importing scipy): (nan, nan)
    when n is 0. Arrays give arrays."""
    correct, n = np.asarray(correct, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = correct / n
        denominator = 1 + _Z**2 / n
        center = (p + _Z**2 / (2 * n)) / denominator
        half = _Z / denominator * np.sqrt(p * (1 - p) / n + _Z**2 / (4 * n**2))
        low, high = np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def accuracy_interval(accuracy, n_eval) -> tuple[float, float]:
    """The Wilson 95% interval of an accuracy measured on `n_eval` items (nan, nan: none)."""
    if n_eval is None or accuracy is None or not n_eval or np.isnan(float(accuracy)):
        return float("nan"), float("nan")
    return wilson(round(float(accuracy) * int(n_eval)), int(n_eval))


def labels_needed(accuracy, n_eval, half_width: float = HEADLINE_HALF_WIDTH) -> int:
    """How many evaluation labels an accuracy like this one needs for a 95% interval no
    wider than +-`half_width`. The estimate is pulled toward 1/2 first (2 right, 2 wrong added:
    Agresti-Coull), so that 5 of 5 does not promise a narrow interval after a few more."""
    n_eval = int(n_eval or 0)
    correct = round(float(accuracy) * n_eval) if n_eval else 0
    p = (correct + 2) / (n_eval + 4)
    n = np.arange(1, 5001)
    low, high = wilson(np.round(p * n), n)
    narrow = np.flatnonzero((high - low) / 2 <= half_width)
    return int(n[narrow[0]]) if len(narrow) else int(n[-1])


def accuracy_headline(accuracy, n_eval, eval_on: str | None = None) -> str:
    """The accuracy as a person should read it, in one line: the point figure with its 95%
    interval and sample size once the interval is narrower than +-10 points, and before that
    how many evaluation labels there are of how many it takes, with the interval."""
    low, high = accuracy_interval(accuracy, n_eval)
    if np.isnan(low):
        return "accuracy not measured yet" + (f" ({eval_on})" if eval_on else "")
    n = int(n_eval)
    audit = eval_on is not None and "audit" in eval_on
    what = "audit labels" if audit else "test items" if eval_on and "test" in eval_on else "items"
    if (high - low) / 2 > HEADLINE_HALF_WIDTH:
        lead = "not enough audit labels yet" if audit else f"too few {what} for a figure"
        return (f"accuracy: {lead} ({n} of ~{labels_needed(accuracy, n)} for ±10 points); "
                f"somewhere in {low:.0%}–{high:.0%}")
    return f"accuracy {float(accuracy):.1%} (95% CI {low:.1%}–{high:.1%}, {n} {what})"
