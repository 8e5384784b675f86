"""Multi-label learning: an item has any subset of the classes, so the model gives each class
its own probability (the columns of `predict_proba` do not sum to 1).

    head = MultiLabelHead(classes=["0", "1", ..., "9"]).fit(X, Y)   # Y: items x classes, 0/1
    proba = head.predict_proba(X_new)                                # P(class applies), per class

The strategies that rank by these probabilities (`mean_uncertainty`, `max_uncertainty`,
`diverse_uncertainty`) are in `workbench.learn.strategies`, beside the single-label ones.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["MultiLabelHead", "multi_label_learner"]


class MultiLabelHead(ClassifierMixin, BaseEstimator):
    """One logistic regression per class (one-vs-rest), kept as one weight matrix, so that
    scoring a pool is one product. Each class's regression weighs its yes and no answers
    alike (class_weight="balanced"): a class a fifth of the items have otherwise goes unsaid
    at a threshold of 0.5 until hundreds of labels. A class every training item has, or none
    has, gets its smoothed rate instead of a model: (positives + 0.5) / (items + 1).

    Measured on two multi-label sets (BBC news digests and pairs of handwritten digits,
    benchmarks/multi_label.py; tuned on seeds 0-2 of random labels): balanced weights on the
    features as they are beat standardised features (micro-F1 0.51 against 0.40 at 20 labels
    on the digests), and C=10 matched C=1. Spreading each class's yes/no over the neighbour
    graph, as LightHead spreads classes, made it worse (0.41 against 0.76 at 200 labels on
    the digit pairs): neighbours share some of an item's classes, not all of them.

    `classes`: the class names, in the order of Y's columns (default: the names Y's label
    lists use, sorted; or 0..C-1 for a 0/1 matrix). `C`: inverse L2 strength. `threshold`:
    the probability from which `predict` says a class applies."""

    uses_representation = True  # a session trains it on the pool's representation

    def __init__(self, classes=None, C: float = 10.0, threshold: float = 0.5, random_state=None):
        self.classes = classes
        self.C = C
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X, Y):
        from sklearn.linear_model import LogisticRegression

        from workbench.learn.threads import limit_threads

        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        Y, self.classes_ = _targets(Y, self.classes)
        if len(Y) != len(X):
            raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}")
        self.n_features_in_ = X.shape[1]
        self.coef_ = np.zeros((X.shape[1], len(self.classes_)))
        self.intercept_ = np.zeros(len(self.classes_))
        for j in range(len(self.classes_)):
            column, rows = Y[:, j], X
            if (column < 0).any():  # answers unknown for this class (a prior's unsure calls)
                rows, column = X[column >= 0], column[column >= 0]
            if not len(column) or column.min() == column.max():  # one answer: its smoothed rate
                rate = (column.sum() + 0.5) / (len(column) + 1)
                self.intercept_[j] = np.log(rate / (1 - rate))
                continue
            # One BLAS thread: on 2 cores two threads made these small fits wait on each other
            with limit_threads(1, user_api="blas"):
                model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=1000,
                                           random_state=self.random_state).fit(rows, column)
            self.coef_[:, j], self.intercept_[j] = model.coef_[0], model.intercept_[0]
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # fit takes a 0/1 matrix: any subset of classes
        return tags

    def decision_function(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the head was fitted on {self.n_features_in_}")
        return X @ self.coef_ + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """(items, classes): the probability that each class applies, on its own."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -50, 50)))

    def predict(self, X) -> np.ndarray:
        """(items, classes) 0/1: the classes whose probability reaches `threshold`."""
        return (self.predict_proba(X) >= self.threshold).astype(np.int8)


def _targets(Y, classes) -> tuple[np.ndarray, np.ndarray]:
    """Y as a 0/1 matrix, and the class names of its columns."""
    if isinstance(Y, np.ndarray) and Y.ndim == 2 and Y.dtype != object:
        if not np.isin(Y, (0, 1, -1)).all():
            raise ValueError("Y must hold 0 or 1 (does the item have the class?), or -1 (not known)")
        names = list(classes) if classes is not None else list(range(Y.shape[1]))
        if len(names) != Y.shape[1]:
            raise ValueError(f"Y has {Y.shape[1]} columns but there are {len(names)} classes")
        return Y.astype(np.int8), np.asarray(names, dtype=object)
    rows = [list(row) for row in Y]
    names = list(classes) if classes is not None else sorted({str(c) for row in rows for c in row})
    column = {str(c): j for j, c in enumerate(names)}
    matrix = np.zeros((len(rows), len(names)), dtype=np.int8)
    for i, row in enumerate(rows):
        for c in row:
            if str(c) not in column:
                raise ValueError(f"Y[{i}] names {c!r}, which is not among the classes {names}")
            matrix[i, column[str(c)]] = 1
    return matrix, np.asarray(names, dtype=object)


def multi_label_learner(learner, class_names: list[str]):
    """The learner a multi-label session trains: None (the default) or "head" as None, a
    MultiLabelHead without `classes` given the session's (its columns are then the session's
    classes, not 0..C-1), any other estimator whose scikit-learn tags say it takes a 0/1
    matrix of classes as it is; a ValueError naming a learner for one class per item."""
    from sklearn.base import clone
    from sklearn.utils import get_tags

    if learner is None or learner == "head":
        return None
    if isinstance(learner, str):
        raise ValueError(f"learner {learner!r} labels one class per item; a multi-label pool trains "
                         "MultiLabelHead (the default, or learner='head') or a scikit-learn "
                         "classifier that takes a 0/1 matrix of classes")
    if isinstance(learner, MultiLabelHead):  # its columns are the session's targets' columns
        given = None if learner.classes is None else [str(c) for c in learner.classes]
        if given is not None and sorted(given) != sorted(class_names):
            raise ValueError(f"the MultiLabelHead's classes {given} differ from the session's "
                             f"{list(class_names)}; give it the session's, or none")
        return clone(learner).set_params(classes=list(class_names))
    try:
        takes_sets = get_tags(learner).classifier_tags.multi_label
    except (AttributeError, TypeError, ValueError):  # not a scikit-learn estimator
        takes_sets = False
    if not takes_sets:
        raise ValueError(f"{type(learner).__name__} labels one class per item; a multi-label pool "
                         "trains MultiLabelHead (the default) or a scikit-learn classifier whose "
                         "tags say multi_label (its fit takes a 0/1 matrix, items x classes, and "
                         "its predict_proba gives items x classes)")
    return learner
