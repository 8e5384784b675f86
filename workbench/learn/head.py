"""The default learner: a light head on the pool's representation.

The expensive part of learning, what the items look like, is done once per pool and
cached (`workbench.data.representation`); a round only has to learn what people's labels
say about that space, which takes milliseconds:

1. Label spreading (Zhou et al. 2004) over the pool's nearest-neighbour graph, seeded with
   people's labels alone: each label flows to its neighbours, theirs to their neighbours,
   damped by `alpha`. The result, a distribution over classes for every unlabeled item,
   is what uncertainty is ranked by (`transductive_proba_`): it comes from the labels and
   the unlabeled data's shape, never from the model's own guesses.
2. A multinomial logistic regression (the head) trained on the labels plus a seeded sample
   of the spread labels as pseudo-labels, weighted by their confidence. Its probabilities
   are the suggestions and what accuracy is measured with, on any item, pool or not.

Without a graph (a plain `fit(X, y)`, or a pool too large for one) the head learns from the
labels alone. Per round at 100 labels on a 10,000-item pool with 128-d features (counted in
benchmarks/round_speed.py): spreading costs at most 20 steps (about 15 are needed) x ~20
edges x 10 classes per item (30-40 M multiply-adds), the head some 30 L-BFGS steps over 2,100
rows x 128 x 10 (0.16 G); suggestions are scored only for the items shown (in blocks of
1,024 rows around them).

It is a scikit-learn estimator: hyperparameters in `__init__`, `fit` returns self,
`classes_`, `predict_proba`, `random_state`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_random_state, validate_data

from workbench.learn.contract import accepts_graph
from workbench.learn.spreading import NeighbourGraph, as_graph, spread

__all__ = ["LightHead", "accepts_graph", "spread_labels"]


class LightHead(ClassifierMixin, BaseEstimator):
    """Label spreading over a neighbour graph plus a logistic-regression head.

    Parameters
    ----------
    C: inverse regularisation of the head (features are unit-length or standardised).
    alpha: how far labels spread (0: not at all; near 1: across the whole graph).
    n_iter: at most this many spreading steps (conjugate gradients, which stops earlier once
        no probability moves by 0.001); None: as many as the graph's width asks for (20 over
        10 neighbours an item, 10 over the 30 of a pool above the exact-search size;
        `workbench.learn.spreading.steps_for`).
    max_pseudo: at most this many spread labels (a seeded sample) train the head.
    random_state: int, None or a numpy RandomState (which spread labels are sampled).

    `fit(X, y, X_unlabeled=None, graph=None, prior=None)`: `graph` is `(neighbors, weights)`,
    two (n_rows, k) arrays over the rows of `[X; X_unlabeled]` (index -1: no neighbour), or a
    `NeighbourGraph` (what a session passes: the pool's graph, built once, and its rows).
    `prior` is `(proba, classes)`: what an earlier model (a bundle a session started from)
    says of the X_unlabeled rows; it seeds spreading beside the labels at `prior_weight` of
    a person's label, so a model trained elsewhere keeps teaching while new labels correct
    it where they disagree, and its classes stay known before anyone labels them. After
    fit: `classes_`, `n_features_in_`, `head_`, `query_head_` (labels only),
    `transductive_proba_` (rows of X_unlabeled; None without a graph), `n_pseudo_labels_`.
    """

    uses_representation = True  # the session hands it the pool's representation, not raw items

    def __init__(self, C=10.0, alpha=0.9, n_iter=None, max_pseudo=2000, prior_weight=0.5,
                 random_state=0):
        self.C = C
        self.alpha = alpha
        self.n_iter = n_iter
        self.max_pseudo = max_pseudo
        self.prior_weight = prior_weight
        self.random_state = random_state

    def fit(self, X, y, X_unlabeled=None, graph=None, prior=None):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        if prior is not None and y.dtype.kind in "US":  # fixed-width text would cut longer names
            y = y.astype(object)
        known = y if prior is None else np.concatenate([y, np.asarray(prior[1], dtype=y.dtype)])
        self._encoder = LabelEncoder().fit(known)
        self.classes_ = self._encoder.classes_
        codes = self._encoder.transform(y)
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
        self.query_head_ = self._head(X, codes)
        self.head_ = self.query_head_
        self.transductive_proba_ = None
        self.n_pseudo_labels_ = 0
        if X_unlabeled is None or (graph is None and prior is None):
            return self
        # float32 stays float32: only the few rows picked as pseudo-labels are read (copying a
        # million rows to float64 first cost a second and 1 GB)
        unlabeled = check_array(X_unlabeled, dtype=[np.float64, np.float32], ensure_min_samples=0,
                                input_name="X_unlabeled")
        if unlabeled.shape[1] != X.shape[1]:
            raise ValueError(f"X_unlabeled has {unlabeled.shape[1]} features, X has {X.shape[1]}")
        seed = None if prior is None else self._prior_seed(prior, len(unlabeled), y.dtype)
        if graph is None:  # no graph to spread over: the prior itself gives the pseudo-labels
            candidates = seed / np.maximum(seed.sum(axis=1, keepdims=True), 1e-12)
        else:
            n_rows = len(X) + len(unlabeled)
            if not isinstance(graph, NeighbourGraph):
                neighbors, weights = (np.asarray(a) for a in graph)
                if neighbors.shape != weights.shape or len(neighbors) != n_rows:
                    raise ValueError(f"graph must be two arrays of {n_rows} rows (X then X_unlabeled), "
                                     f"got shapes {neighbors.shape} and {weights.shape}")
            graph = as_graph(graph)
            if len(graph) != n_rows:
                raise ValueError(f"graph must have {n_rows} rows (X then X_unlabeled), got {len(graph)}")
            spread_ = spread(graph, codes, len(self.classes_), alpha=self.alpha, max_iter=self.n_iter,
                             prior=seed)
            self.transductive_proba_ = candidates = spread_[len(X):]
        reached = np.flatnonzero(candidates.max(axis=1) > 1 / len(self.classes_))
        if len(reached) > self.max_pseudo:
            reached = np.sort(rng.choice(reached, self.max_pseudo, replace=False))
        if len(reached) == 0:
            return self
        pseudo = candidates[reached]
        self.head_ = self._head(np.concatenate([X, unlabeled[reached].astype(np.float64)]),
                                np.concatenate([codes, pseudo.argmax(axis=1)]),
                                np.concatenate([np.ones(len(X)), pseudo.max(axis=1)]))
        self.n_pseudo_labels_ = int(len(reached))
        return self

    def _prior_seed(self, prior, n_rows: int, dtype) -> np.ndarray:
        """The prior's probabilities in this model's class columns, scaled by prior_weight."""
        proba, classes = np.asarray(prior[0], dtype=np.float64), np.asarray(prior[1], dtype=dtype)
        if proba.shape != (n_rows, len(classes)):
            raise ValueError(f"prior probabilities must be (len(X_unlabeled), len(classes)) = "
                             f"({n_rows}, {len(classes)}), got {proba.shape}")
        seed = np.zeros((n_rows, len(self.classes_)))
        seed[:, self._encoder.transform(classes)] = proba
        return seed * self.prior_weight

    def _head(self, X, codes, weight=None):
        from sklearn.linear_model import LogisticRegression

        from workbench.learn.threads import limit_threads

        # One BLAS thread: these products are tiny, and on 2 cores two threads made a fit
        # 50x slower (1 s instead of 20 ms) by waiting on each other.
        with limit_threads(1, user_api="blas"):
            return LogisticRegression(C=self.C, max_iter=500).fit(X, codes, sample_weight=weight)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "head_")
        return self._proba(self.head_, X)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[proba.argmax(axis=1)]

    def query_proba(self, X) -> np.ndarray:
        """Probabilities of the head trained on people's labels alone (for items outside
        the graph; inside it, `transductive_proba_` ranks better)."""
        check_is_fitted(self, "head_")
        return self._proba(self.query_head_, X)

    def _proba(self, head, X) -> np.ndarray:
        # float32 stays float32: scoring a million rows must not copy them to float64 first
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_min_samples=0)
        out = np.zeros((len(X), len(self.classes_)), dtype=X.dtype)
        if len(X):
            out[:, head.classes_] = _softmax_proba(head, X)
        return out


def _softmax_proba(head, X) -> np.ndarray:
    """The fitted LogisticRegression's predict_proba, in X's precision: one product and a
    softmax (sklearn's own upcasts X to float64, a 512 MB copy for 1,000,000 x 64)."""
    coef = head.coef_.astype(X.dtype, copy=False)
    logits = X @ coef.T + head.intercept_.astype(X.dtype)
    if logits.shape[1] == 1:  # two classes: one logit
        logits = np.hstack([np.zeros_like(logits), logits])
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    return logits / logits.sum(axis=1, keepdims=True)


def spread_labels(neighbors, weights, codes, n_classes: int, *, alpha: float = 0.9,
                  n_iter: int | None = None, prior: np.ndarray | None = None) -> np.ndarray:
    """Label spreading over the graph given as `(neighbors, weights)`, two (n_rows, k) arrays
    (index -1: no neighbour), where rows 0..len(codes)-1 are the labeled items (and `prior`,
    when given, seeds the rest): the fixed point of F <- alpha * S F + (1 - alpha) * Y over the
    symmetrically normalised graph S, in at most `n_iter` conjugate-gradient steps (None:
    `workbench.learn.spreading.steps_for` the graph's width). Returns row distributions; a
    row the labels never reach is uniform."""
    return spread(NeighbourGraph.from_arrays(neighbors, weights), np.asarray(codes), n_classes,
                  alpha=alpha, max_iter=n_iter, prior=prior)
