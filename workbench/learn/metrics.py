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
