"""Query strategies: which unlabeled items are worth a human's time.

Each strategy is a pure function of the model's class probabilities:

    positions, scores = margin(proba, n, rng=0)

`positions` index the rows of `proba`, most valuable first; `scores` are their
utilities (higher = more worth labeling), so a UI can say why an item was picked.
Following modAL, a strategy is a utility function composed with a selector
(`select_top`), so a new one is three lines:

    def my_strategy(proba, n, *, rng=None):
        return select_top(my_utility(proba), n, rng=rng)

BALD takes Monte-Carlo samples of the probabilities, shape (T, N, C), instead.
`diverse_margin`, the session's default, also reads the items' features, so that a
batch labeled before the next retrain does not spend ten labels on one confusion.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "MULTI_LABEL_STRATEGIES",
    "SPAN_STRATEGIES",
    "BOX_STRATEGIES",
    "Query",
    "STRATEGIES",
    "bald",
    "bald_scores",
    "binary_uncertainty",
    "diverse_batches_by",
    "diverse_margin",
    "diverse_uncertainty",
    "entropy",
    "entropy_scores",
    "least_confident_token",
    "mean_token_entropy",
    "get_strategy",
    "least_confidence",
    "least_confidence_scores",
    "margin",
    "margin_scores",
    "max_uncertainty",
    "mean_uncertainty",
    "random",
    "select_top",
]

_EPS = 1e-12


class Query(NamedTuple):
    """Positions chosen by a strategy, best first, and the utility of each."""

    positions: np.ndarray
    scores: np.ndarray


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_proba(proba) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"proba must be a 2-d array (items x classes), got shape {proba.shape}")
    return proba


def select_top(scores, n: int, *, rng=None) -> Query:
    """The `n` highest scores, best first; ties broken at random (seeded) so that
    equal utilities do not always favour the first items of the pool."""
    scores = np.asarray(scores, dtype=np.float64)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n = min(int(n), scores.shape[0])
    if n == 0:
        return Query(np.empty(0, dtype=np.int64), np.empty(0))
    tiebreak = _rng(rng).random(scores.shape[0])
    # argpartition first keeps a query round O(N) on big pools; only the winners
    # (plus anything tied with the last winner) get sorted.
    if n < scores.shape[0]:
        cut = np.partition(scores, scores.shape[0] - n)[scores.shape[0] - n]
        candidates = np.flatnonzero(scores >= cut)
    else:
        candidates = np.arange(scores.shape[0])
    order = np.lexsort((-tiebreak[candidates], -scores[candidates]))[:n]
    positions = candidates[order].astype(np.int64)
    return Query(positions, scores[positions])


# -- utilities: higher means "the model is less sure, label this" -----------------------


def least_confidence_scores(proba) -> np.ndarray:
    """1 - max_c p(c|x): how far the top class is from certainty."""
    return 1.0 - _check_proba(proba).max(axis=1)


def margin_scores(proba) -> np.ndarray:
    """-(p1 - p2): a small gap between the two most likely classes means hesitation."""
    proba = _check_proba(proba)
    if proba.shape[1] < 2:
        return np.zeros(proba.shape[0])
    top2 = np.partition(proba, proba.shape[1] - 2, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


def entropy_scores(proba) -> np.ndarray:
    """Shannon entropy (nats) of the predicted distribution."""
    proba = _check_proba(proba)
    return -(proba * np.log(proba + _EPS)).sum(axis=1)


def bald_scores(proba_samples) -> np.ndarray:
    """Mutual information between the label and the model (Houlsby et al. 2011):
    entropy of the mean prediction minus the mean entropy of each sample. High when
    the MC-dropout samples disagree, i.e. the model, not the data, is uncertain."""
    samples = np.asarray(proba_samples, dtype=np.float64)
    if samples.ndim != 3:
        raise ValueError(
            f"BALD needs MC samples shaped (samples, items, classes), got shape {samples.shape}"
        )
    mean = samples.mean(axis=0)
    entropy_of_mean = -(mean * np.log(mean + _EPS)).sum(axis=1)
    mean_entropy = -(samples * np.log(samples + _EPS)).sum(axis=2).mean(axis=0)
    return entropy_of_mean - mean_entropy


# -- strategies ------------------------------------------------------------------------


def random(proba, n: int, *, rng=None) -> Query:
    """Uniform sampling: the baseline every other strategy must beat."""
    n_items = np.asarray(proba).shape[-2] if np.ndim(proba) >= 2 else len(proba)
    return select_top(_rng(rng).random(n_items), n, rng=rng)


def least_confidence(proba, n: int, *, rng=None) -> Query:
    return select_top(least_confidence_scores(proba), n, rng=rng)


def margin(proba, n: int, *, rng=None) -> Query:
    return select_top(margin_scores(proba), n, rng=rng)


def entropy(proba, n: int, *, rng=None) -> Query:
    return select_top(entropy_scores(proba), n, rng=rng)


def bald(proba_samples, n: int, *, rng=None) -> Query:
    return select_top(bald_scores(proba_samples), n, rng=rng)


def diverse_margin(proba, n: int, *, features, batch: int = 10, prefilter: int = 50,
                   diverse_batches: int = 5, rng=None) -> Query:
    """Margin sampling made batch-aware ("diverse mini-batch active learning", Zhdanov 2019).

    Plain margin fills a batch with near-copies of one confusion (ten 1-or-7s), and the
    first of them teaches the model what the other nine would. Here each batch is drawn
    from the `prefilter * batch` smallest margins: k-means (weighted by uncertainty) splits
    those candidates into `batch` groups in feature space, and the candidate nearest each
    group's centre is taken. The first `diverse_batches` batches are built this way, the
    rest of the queue follows in margin order.

    `features`: (N, D) array aligned with `proba` (images flattened), standardised here.
    `prefilter` (the paper's beta) is 50: with a semi-supervised learner (label
    spreading) the uncertain items form whole regions, and a wide candidate set lets the
    k-means cover them; on the digits (seeds 0-4) it needed 30 labels where 4 needed 40,
    and for logistic regression it was as good. See benchmarks/label_efficiency.py.
    """
    proba = _check_proba(proba)
    utility = margin_scores(proba)  # in [-1, 0]: 1 + utility weighs the k-means
    return diverse_batches_by(utility, 1.0 + utility, n, features=features, batch=batch,
                              prefilter=prefilter, diverse_batches=diverse_batches, rng=rng)


def diverse_batches_by(utility, weight, n: int, *, features, batch: int = 10, prefilter: int = 50,
                       diverse_batches: int = 5, rng=None) -> Query:
    """The first `diverse_batches` batches of a batch-aware queue (see `diverse_margin`) for
    any `utility` (higher: label it), the k-means weighted by `weight` (> 0, larger for the
    more uncertain); the rest of the queue follows in utility order."""
    from sklearn.cluster import KMeans

    from workbench.learn.threads import limit_threads

    utility, weight = np.asarray(utility, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    features = np.asarray(features)  # only the candidates' rows are read (and copied)
    features = features.reshape(len(features), -1)
    if features.shape[0] != utility.shape[0]:
        raise ValueError(f"features has {features.shape[0]} rows but proba has {utility.shape[0]}; "
                         "they must describe the same items")
    if batch < 1 or prefilter < 1:
        raise ValueError(f"batch and prefilter must be >= 1, got batch={batch}, prefilter={prefilter}")
    by_utility = select_top(utility, utility.shape[0], rng=rng)
    n = min(int(n), utility.shape[0])
    order = by_utility.positions  # utility order
    taken = np.zeros(len(order), dtype=bool)  # by rank in `order`: already chosen
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    chosen: list[int] = []
    seed = int(_rng(rng).integers(2**31))
    for _ in range(diverse_batches):
        candidates = order[np.flatnonzero(~taken)[: prefilter * batch]]
        k = min(batch, len(candidates))
        if k == 0 or len(chosen) >= n:
            break
        x = features[candidates].astype(np.float64)
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
        # One thread: on 2 cores, threads waiting on each other made this 500-point k-means
        # take 50-300 ms instead of 5.
        with limit_threads(1):
            km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(
                x, sample_weight=weight[candidates] + 1e-3)
        picked = []
        for c in range(k):
            members = np.flatnonzero(km.labels_ == c)
            if len(members):
                distance = ((x[members] - km.cluster_centers_[c]) ** 2).sum(axis=1)
                picked.append(int(candidates[members[distance.argmin()]]))
        picked_ranks = np.sort(rank[np.asarray(picked, dtype=np.int64)])
        chosen.extend(order[picked_ranks].tolist())  # in utility order
        taken[picked_ranks] = True
    rest = order[~taken][: max(0, n - len(chosen))]
    positions = np.concatenate([np.asarray(chosen, dtype=np.int64), rest])[:n].astype(np.int64)
    return Query(positions, utility[positions] if len(positions) else np.empty(0))


# -- multi-label strategies: each column of proba is one class's own probability ---------
# The uncertainty of one class is 1 - |2p - 1|: 1 at p = 0.5, 0 at 0 or 1. An item's utility is
# its mean over the classes (the item would teach the most decisions) or the largest (one
# decision the model cannot make). diverse_uncertainty, the default for multi-label pools,
# spreads each batch over the feature space as diverse_margin does for one class per item.
def binary_uncertainty(proba) -> np.ndarray:
    """(items, classes): 1 - |2p - 1| for each class's own probability."""
    return 1.0 - np.abs(2.0 * _check_proba(proba) - 1.0)


def mean_uncertainty(proba, n: int, *, rng=None) -> Query:
    """The items whose classes the model is, on average, least sure of."""
    return select_top(binary_uncertainty(proba).mean(axis=1), n, rng=rng)


def max_uncertainty(proba, n: int, *, rng=None) -> Query:
    """The items with the one class decision the model is least sure of."""
    return select_top(binary_uncertainty(proba).max(axis=1), n, rng=rng)


def diverse_uncertainty(proba, n: int, *, features, batch: int = 10, prefilter: int = 50,
                        diverse_batches: int = 5, rng=None) -> Query:
    """Mean binary uncertainty made batch-aware: each of the first batches is spread by
    k-means over the `prefilter * batch` most uncertain items (see `diverse_margin`)."""
    utility = binary_uncertainty(proba).mean(axis=1)
    return diverse_batches_by(utility, utility, n, features=features, batch=batch,
                              prefilter=prefilter, diverse_batches=diverse_batches, rng=rng)


diverse_uncertainty.needs_features = True  # type: ignore[attr-defined]

MULTI_LABEL_STRATEGIES = {
    "random": random,
    "mean_uncertainty": mean_uncertainty,
    "max_uncertainty": max_uncertainty,
    "diverse_uncertainty": diverse_uncertainty,
}


# BALD is marked so the session knows to ask the learner for MC-dropout samples, and
# diverse_margin so that it is handed the items' features and the session's batch size.
bald.needs_samples = True  # type: ignore[attr-defined]
diverse_margin.needs_features = True  # type: ignore[attr-defined]

# A spans pool's model gives each text two uncertainty columns (learn/token_tagger.py's
# UNCERTAINTY) in place of class probabilities: its strategies rank by one of them.
def least_confident_token(scores, n: int, *, rng=None) -> Query:
    """The texts whose least sure token is least sure (1 - its top-tag probability)."""
    return select_top(np.asarray(scores)[:, 0], n, rng=rng)


def mean_token_entropy(scores, n: int, *, rng=None) -> Query:
    """The texts whose tokens' tag entropy is highest on average (nats)."""
    return select_top(np.asarray(scores)[:, 1], n, rng=rng)


SPAN_STRATEGIES = {"least_confident_token": least_confident_token,
                   "mean_token_entropy": mean_token_entropy, "random": random}


# A boxes pool's model gives each image two uncertainty columns (learn/box_detector.py's
# UNCERTAINTY) in place of class probabilities: its strategies rank by one of them.
def least_confident_box(scores, n: int, *, rng=None) -> Query:
    """The images holding the box the detector is least sure to keep or drop (1 - |2s - 1|)."""
    return select_top(np.asarray(scores)[:, 0], n, rng=rng)


def box_entropy(scores, n: int, *, rng=None) -> Query:
    """The images whose candidate boxes' scores add up to the most doubt (binary entropy,
    nats, summed over the boxes: an image of many unsure objects before one of a single)."""
    return select_top(np.asarray(scores)[:, 1], n, rng=rng)


BOX_STRATEGIES = {"least_confident_box": least_confident_box, "box_entropy": box_entropy,
                  "random": random}


STRATEGIES = {
    "random": random,
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
    "bald": bald,
    "diverse_margin": diverse_margin,
}


def get_strategy(strategy, task: str = "single"):
    """A strategy function from its name (among those of the pool's task: STRATEGIES, or
    MULTI_LABEL_STRATEGIES for "multi_label"), or the callable itself."""
    if callable(strategy):
        return strategy
    known = {"multi_label": MULTI_LABEL_STRATEGIES, "spans": SPAN_STRATEGIES,
             "boxes": BOX_STRATEGIES}.get(task, STRATEGIES)
    try:
        return known[strategy]
    except KeyError:
        kind = "" if task == "single" else f" for a {task!r} pool"
        raise ValueError(
            f"unknown strategy {strategy!r}{kind}; expected one of {sorted(known)} or a callable"
        ) from None


def strategy_name(strategy) -> str:
    return strategy if isinstance(strategy, str) else getattr(strategy, "__name__", "custom")
