"""What the workbench asks of a learner, and how it calls one.

A learner is any scikit-learn classifier with `predict_proba`. What else it takes is read
from its `fit` signature (`X_unlabeled`: semi-supervised, `graph`: the pool's neighbour
graph, `prior`: an earlier model's probabilities) and from `accepts_images`, and the
session calls it accordingly. Knows no learner in particular.
"""

from __future__ import annotations

import numpy as np

__all__ = ["accepts_graph", "accepts_unlabeled", "features_for", "fit_takes"]


def features_for(learner, X: np.ndarray) -> np.ndarray:
    """Images stay images for learners that say they take them; every other
    scikit-learn estimator gets one flat vector per item."""
    if X.ndim > 2 and not getattr(learner, "accepts_images", False):
        return X.reshape(X.shape[0], -1)
    return X


def fit_takes(learner, parameter: str) -> bool:
    """Whether `learner.fit` has a parameter of this name."""
    import inspect

    try:
        return parameter in inspect.signature(learner.fit).parameters
    except (TypeError, ValueError):
        return False


def accepts_unlabeled(learner) -> bool:
    """Whether `learner.fit` takes `X_unlabeled` (semi-supervised learners such as
    TorchClassifier); plain scikit-learn classifiers are fitted on the labels alone."""
    return fit_takes(learner, "X_unlabeled")


def accepts_graph(learner) -> bool:
    """Whether `learner.fit` takes `graph` (the pool's neighbour graph), as LightHead does."""
    return fit_takes(learner, "graph")
