"""Suspected mislabels: the labeled items a model trained without them disagrees with.

    table = suspects(session, k=20)   # most suspicious first

Every label is scored by cross-fitting: the labeled items are split into `folds` parts
(stratified by label, seeded by the session's seed), and each part is scored by a fresh
copy of the session's learner (`sklearn.base.clone`) trained on the other parts, on the
features the session's learner sees (`session.inputs`). An item's own label therefore never
trains the model that judges it; in-sample loss would instead reward a model for having
memorised the very mistakes it is meant to find. Semi-supervised learners get the held-out
part, unlabeled, as part of the unlabeled pool (label spreading may use where those items
lie, never their labels), as a training round gives them the rest of the pool.

With `passes=3` (the default) the cross-fitting is repeated: each further pass leaves out
of training the labels the pass before it found suspicious (its model prefers another
class), at most half of any class's labels, and passes them as unlabeled instead. Labels
that are wrong in a systematic way (many 4s labeled 9) otherwise teach every fold's model
the same mistake. A pass that would leave out the very labels the pass before it left out
would repeat it exactly, so the passes stop there (`CrossFit.passes`: how many were made).
The model that scores an item is still trained without that item's label.

The score (higher: more suspicious), `method`:
- "loss" (the default): the out-of-sample log loss -log p_given, in [0, inf).
- "margin": the normalised margin max_{j != given} p_j - p_given, in [-1, 1]; above 0 the
  held-out model prefers another class.
- "confident_learning": Northcutt, Jiang and Chuang (2021), "Confident learning: estimating
  uncertainty in dataset labels": class j's threshold t_j is the mean p_j over the items
  labeled j; an item is an issue when p_j >= t_j for some j != given. Issues come first,
  each group ranked by the margin (written from the paper's definitions).
Whatever the score, `suggested`, `confidence` and the reason's percentages come from the
same probabilities.

The defaults were chosen by benchmarks/label_noise.py (results/label_noise.json): every
score after 1, 2 and 3 passes, ranked by mean precision at k (k = the number of flips) on
seeds 0-2 (seeds 3-4 held out), on the digits in two families of settings: (a) all 1,797
labeled, 5%, 10% or 20% flipped uniformly or towards each class's most confused class; (b)
the labels a person gives: the first 200, 500 and 1,000 items the default strategy served
(ambiguous ones, mostly), 7% of them then flipped, both ways. Seeds 0-2, (a) / (b): loss
with 3 passes 98.35% / 97.1%, with 2 98.35% / 96.75%, with 1 97.1% / 97.0%; margin with 3
98.4% / 96.6%, with 2 (the default before) 98.4% / 96.1%, with 1 97.85% / 96.7%. Held-out
seeds: loss/3 98.6% / 95.2%, loss/2 98.5% / 96.4%, margin/2 98.2% / 93.9%. The loss is what
helps on chosen labels, plausibly because the margin ranks a right label with one close
rival class above a wrong one whose held-out probability is spread over several classes;
the loss asks only how little the given label gets. The third pass is within noise (+0.4
points on seeds 0-2, -1.2 on the held-out ones) and costs a pass where the second still
changed something (100,000 vectors: 18 s instead of 14, in one run). Tried on (b) and not taken (see the
benchmark's "alternatives"): 10 folds, a k-nearest-neighbour vote over the labeled items in
the learner's features averaged in as a second opinion (the label spreading inside the
default learner already is one), and confident learning's per-class thresholds used to
calibrate the probabilities before scoring.

Which labels: every current label, whoever gave it. Audit labels are scored and train the
cross-fitted models too: a wrong audit label misstates the session's accuracy, which is
worse than a wrong training label, and these throwaway models never feed the session's
model or its accuracy (its rounds still keep audit labels out of training). Their reason
says so, since relabeling one changes the measured accuracy. Overlap items (labeled by two
annotators) are judged on their current label; disagreements between annotators are
`Session.adjudicate()`'s business. A class with a single label cannot be judged against
anything: its item trains every fold and is left out of the ranking (listed, with why, in
`table.attrs["unscored"]`).

Nothing is cached: each call reads the current labels and fits afresh, 5 to 15 fits (1.5 s
on the 1,797 digits, 18 s on 100,000 vectors of 64 dimensions, on 2 shared cores). Like a
training round it waits for the pool's representation while that is being learned.

On a session with a Dask cluster (`Session(..., cluster=client)`), each fold of a pass is a
task on the cluster's workers, with the same results to 1e-6; without one the folds run in
this process. See `workbench.loop.cleaning_folds`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.learn.queue import AUDIT
from workbench.loop.cleaning_folds import check_folds, one_pass

__all__ = ["CrossFit", "METHODS", "cross_fit", "suspicion", "suspects"]

METHODS = ("margin", "loss", "confident_learning")
COLUMNS = ["item_id", "given", "suggested", "score", "confidence", "annotator", "time", "reason"]
_EPS = 1e-12


@dataclass
class CrossFit:
    """Out-of-sample class probabilities of the labeled items.

    `proba[i]` (columns in `classes` order) comes from a model trained without `item_ids[i]`
    (the last pass's); `given[i]` is the index of its label in `classes`; `fold[i]` the part
    it was held out in; `passes`: how many passes were made; `by_pass[p]`: pass p+1's
    probabilities (the last one is `proba`); `pruned`: items left out of the last pass's
    training; `unscored`: labeled items that could not be scored (item_id -> why), which
    trained every model."""

    item_ids: list[str]
    given: np.ndarray
    proba: np.ndarray
    classes: list
    fold: np.ndarray
    folds: int
    passes: int
    pruned: list[str] = field(default_factory=list)
    unscored: dict[str, str] = field(default_factory=dict)
    by_pass: list[np.ndarray] = field(default_factory=list)


def suspects(session, k: int | None = None, *, method: str = "loss", folds: int = 5,
             passes: int = 3) -> pd.DataFrame:
    """The labeled items most likely to be mislabeled, most suspicious first: the top `k`,
    or every scored item when `k` is None.

    Columns: item_id, given (the current label), suggested (the class the out-of-sample
    model ranks first), score (higher: more suspicious; see the module doc for `method`
    and `passes`),
    confidence (the out-of-sample probability of `suggested`), annotator and time (who gave
    the current label, when), reason (a sentence). `attrs`: method, folds, passes,
    n_labels, unscored.

    Raises ValueError when there are too few labels to cross-fit: at least 2 labels in each
    of at least 2 classes (then every model is trained on 2 classes or more)."""
    k = check_k(k)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    fit = cross_fit(session, folds=folds, passes=passes)
    score = suspicion(fit.proba, fit.given, method)
    n = len(score)
    order = np.lexsort((np.arange(n), -score))[: n if k is None else k]
    proba, given = fit.proba[order], fit.given[order]
    best = proba.argmax(axis=1)
    ids = [fit.item_ids[i] for i in order]
    classes = fit.classes
    names = [str(c) for c in classes]
    who = _provenance(session, ids, [names[g] for g in given])
    roles = [session.role_of(i) for i in ids]
    flagged = (_confident_issues(fit.proba, fit.given)[order] if method == "confident_learning"
               else np.zeros(len(order), dtype=bool))
    reasons = [_reason(p, g, names, fit.folds, role == AUDIT, issue)
               for p, g, role, issue in zip(proba, given, roles, flagged)]
    table = pd.DataFrame({
        "item_id": pd.Series(ids, dtype=object),
        "given": pd.Series([classes[g] for g in given], dtype=object),
        "suggested": pd.Series([classes[b] for b in best], dtype=object),
        "score": score[order].astype(float),
        "confidence": proba[np.arange(len(order)), best].astype(float),
        "annotator": pd.Series(who["annotator"], dtype=object),
        "time": pd.to_datetime(pd.Series(who["time"], dtype=object), utc=True),
        "reason": pd.Series(reasons, dtype=object),
    }, columns=COLUMNS)
    table.attrs.update({"method": method, "folds": fit.folds, "passes": fit.passes,
                        "n_labels": len(fit.item_ids) + len(fit.unscored),
                        "unscored": dict(fit.unscored)})
    return table


def suspicion(proba, given, method: str = "margin") -> np.ndarray:
    """Suspicion scores (higher: more likely mislabeled) from out-of-sample probabilities
    `proba` (n, C) and the given labels as column indices `given` (n,)."""
    proba = np.asarray(proba, dtype=np.float64)
    given = np.asarray(given, dtype=np.int64)
    rows = np.arange(len(given))
    p_given = proba[rows, given]
    if method == "loss":
        return -np.log(np.clip(p_given, _EPS, 1.0))
    others = proba.copy()
    others[rows, given] = -np.inf
    margin = others.max(axis=1) - p_given if proba.shape[1] > 1 else -p_given
    if method == "margin":
        return margin
    if method == "confident_learning":  # issues (>= 1) above every non-issue (< 1)
        return np.where(_confident_issues(proba, given), 2.0 + margin, margin)
    raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")


def _confident_issues(proba, given) -> np.ndarray:
    """Confident learning's off-diagonal of the confident joint: an item labeled i is
    counted for class j when p_j >= t_j (t_j: the mean p_j over the items labeled j), j
    being the most probable such class; an issue when j != i. Classes nobody labeled have
    no threshold and count for nothing."""
    proba = np.asarray(proba, dtype=np.float64)
    given = np.asarray(given, dtype=np.int64)
    n_classes = proba.shape[1]
    counts = np.bincount(given, minlength=n_classes)
    sums = np.zeros(n_classes)
    np.add.at(sums, given, proba[np.arange(len(given)), given])
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    above = np.where(proba >= thresholds - 1e-12, proba, -np.inf)
    confident = above.argmax(axis=1)
    has_one = np.isfinite(above.max(axis=1))
    return has_one & (confident != given)


def cross_fit(session, *, folds: int = 5, passes: int = 3) -> CrossFit:
    """Out-of-sample probabilities of the session's labeled items (see the module doc)."""
    check_folds(folds)
    if isinstance(passes, bool) or not isinstance(passes, numbers.Integral) or passes < 1:
        raise ValueError(f"passes must be an int of at least 1, got {passes!r}")
    folds, passes = int(folds), int(passes)
    labels = session.labels
    classes = list(session.classes)
    names = [str(c) for c in classes]
    index = {name: j for j, name in enumerate(names)}
    item_ids = list(labels)
    given = np.array([index[str(labels[i])] for i in item_ids], dtype=np.int64)
    counts = np.bincount(given, minlength=len(classes))
    if int((counts >= 2).sum()) < 2:
        have = ", ".join(f"{names[j]}: {counts[j]}" for j in np.flatnonzero(counts)) or "none"
        raise ValueError(
            f"suspects() needs at least 2 labels in each of at least 2 classes to cross-fit "
            f"(each label is scored by a model trained without it, over {folds} folds); the "
            f"session has {len(item_ids)} label(s) ({have})")
    pool = session.pool
    positions = pool.positions(item_ids) if item_ids else np.empty(0, dtype=np.int64)
    single = counts[given] < 2  # alone in its class: trains every fold, is not scored
    fold = _stratified_folds(given, folds, session.seed)
    fold[single] = -1
    values = _label_array([labels[i] for i in item_ids])
    rest = np.flatnonzero(~pool.item_ids.isin(item_ids))  # unlabeled (skipped too), as in a round
    scored = np.flatnonzero(~single)

    pruned = np.zeros(len(item_ids), dtype=bool)
    proba = one_pass(session, positions, values, fold, folds, rest, names, pruned=pruned)
    by_pass = [proba]
    while len(by_pass) < passes:
        doubted = _to_prune(proba, given, scored)
        if np.array_equal(doubted, pruned):  # the next pass would repeat this one exactly
            break
        pruned = doubted
        proba = one_pass(session, positions, values, fold, folds, rest, names, pruned=pruned,
                         pass_number=len(by_pass) + 1)
        by_pass.append(proba)
    return CrossFit(item_ids=[item_ids[i] for i in scored], given=given[scored],
                    proba=proba[scored], classes=classes, fold=fold[scored], folds=folds,
                    passes=len(by_pass), pruned=[item_ids[i] for i in np.flatnonzero(pruned)],
                    unscored={item_ids[i]: f"the only label of class {names[given[i]]}: nothing "
                              "to compare it with" for i in np.flatnonzero(single)},
                    by_pass=[p[scored] for p in by_pass])


def _to_prune(proba, given, scored) -> np.ndarray:
    """The items whose held-out model prefers another class, most suspicious first, at most
    half of each class's labels (a class must keep teaching the second pass)."""
    prune = np.zeros(len(given), dtype=bool)
    margin = np.full(len(given), -np.inf)
    margin[scored] = suspicion(proba[scored], given[scored], "margin")
    for label in np.unique(given[scored]):
        members = np.flatnonzero(given == label)
        bad = members[margin[members] > 0]
        bad = bad[np.argsort(-margin[bad], kind="stable")][: len(members) // 2]
        prune[bad] = True
    return prune


def _stratified_folds(given, folds: int, seed) -> np.ndarray:
    """A fold per item: each class's items, in a seeded random order, dealt round the folds,
    continuing where the previous class stopped, so the folds are balanced in size and in
    labels (no fold holds all of a class with 2 labels or more)."""
    rng = np.random.default_rng(seed if isinstance(seed, numbers.Integral) else 0)
    fold = np.empty(len(given), dtype=np.int64)
    start = 0
    for label in np.unique(given):
        members = rng.permutation(np.flatnonzero(given == label))
        fold[members] = (start + np.arange(len(members))) % folds
        start = (start + len(members)) % folds
    return fold


def _label_array(values: list) -> np.ndarray:
    """Label values as the session hands them to its learner."""
    return np.asarray(values, dtype=object if values and isinstance(values[0], str) else None)


def _provenance(session, item_ids: list[str], labels: list[str]) -> dict:
    """Who gave each item's current label and when (blame: a merged label names its author);
    None where the store's label is no longer the one scored (changed meanwhile)."""
    annotator = [None] * len(item_ids)
    when = [pd.NaT] * len(item_ids)
    if not item_ids:
        return {"annotator": annotator, "time": when}
    store = session.store
    if session.at is None:
        frame = store.blame(item_ids)
    else:
        frame = store.current_labels_at(session.at)
        frame = frame[frame.index.isin(item_ids)]
    found = {item: (str(label), who, t) for item, label, who, t in
             zip(frame.index, frame["label"], frame["annotator"], frame["time"])}
    for i, (item, label) in enumerate(zip(item_ids, labels)):
        row = found.get(item)
        if row is not None and row[0] == label:
            annotator[i], when[i] = row[1], row[2]
    return {"annotator": annotator, "time": when}


def _reason(p, given: int, names, folds: int, audit: bool, issue: bool) -> str:
    best = int(p.argmax())
    model = f"a model trained without this label ({folds}-fold cross-fitting)"
    if best != given:
        text = f"{model} puts {names[best]} at {p[best]:.0%} and the given {names[given]} at {p[given]:.0%}"
    else:
        others = p.copy()
        others[given] = -np.inf
        second = int(others.argmax())
        text = (f"{model} agrees with the given {names[given]} ({p[given]:.0%}; next "
                f"{names[second]} at {p[second]:.0%})")
    if issue:
        text = "confident-learning issue: " + text
    if audit:
        text += "; an audit label: changing it changes the measured accuracy"
    return text


def check_k(k):
    """`k` of suspects(k): None (every row) or a positive int; a ValueError for anything else."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive int or None, got {k!r}")
    return int(k)
