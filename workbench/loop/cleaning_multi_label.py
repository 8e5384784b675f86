"""Suspected mislabels in a multi-label pool: one score per (item, class) decision.

A set label can be wrong in two ways for each class: a class given that the item does not
have, or a class it has that was left out. Each labeled item is scored by a model that never
trained on it (k-fold cross-fitting of a clone of the session's learner, on the features a
round trains on), class by class: the suspicion of a given class is 1 - p, of a missing one
p, where p is the held-out probability that the class applies. The table lists every
(item, class) decision, most suspicious first, so the top rows are what to look at: "item 12
lacks 'sport' (held-out p 0.97)".

The folds run as the single-label ones do (workbench.loop.cleaning_folds): here, one after
the other, or on the session's Dask cluster as one task each, with the same probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from workbench.data.jobs import map_parts
from workbench.data.tasks import LabelSet, indicator
from workbench.learn.learners import features_for
from workbench.loop.cleaning_folds import WHAT, FoldJob, labeled_for_folds, run_fold

COLUMNS = ["item_id", "class", "given", "p_held_out", "suspicion", "label", "suggested", "fold"]


def multi_label_suspects(session, k: int | None = None, *, folds: int = 5) -> pd.DataFrame:
    """Every (item, class) decision of the session's labels, most suspicious first (the
    first `k`): `given` is True where the label includes the class, `p_held_out` the
    probability a model trained without the item gives the class, `suspicion` how far that
    is from the label (1 - p for a given class, p for a missing one), `label` the item's
    set as given, `suggested` the held-out model's set, `fold` the fold it was held out in."""
    labels, item_ids = labeled_for_folds(session, folds, items="labels", scorer="a model")
    names = session.class_names
    Y = indicator([labels[i] for i in item_ids], names)
    X = session.inputs.features()[session.pool.positions(item_ids)]
    fold = np.random.default_rng(session.seed).permutation(len(item_ids)) % folds
    proba = np.zeros(Y.shape)
    # one FoldJob per fold (the labeled rows only: a multi-label learner takes no graph)
    jobs = [FoldJob(clone(session.learner), features_for(session.learner, X[fold != f]), Y[fold != f], {},
                    features_for(session.learner, X[fold == f]), 0, list(names), np.flatnonzero(fold == f),
                    f, folds, 1) for f in range(folds)]
    client = getattr(session, "cluster", None)
    done = (map(run_fold, jobs) if client is None
            else map_parts(run_fold, jobs, cluster=client, what=WHAT))
    for job, p in zip(jobs, done):
        proba[job.held] = p
    given = Y.astype(bool)
    suspicion = np.where(given, 1 - proba, proba)
    rows, columns = np.divmod(np.arange(Y.size), Y.shape[1])
    threshold = getattr(session.learner, "threshold", 0.5)
    suggested = [LabelSet(c for c, p in zip(session.classes, row) if p >= threshold) for row in proba]
    table = pd.DataFrame({
        "item_id": [item_ids[i] for i in rows],
        "class": [session.classes[j] for j in columns],
        "given": given.ravel(),
        "p_held_out": proba.ravel(),
        "suspicion": suspicion.ravel(),
        "label": [labels[item_ids[i]] for i in rows],
        "suggested": [suggested[i] for i in rows],
        "fold": fold[rows],
    }, columns=COLUMNS)
    table = table.sort_values("suspicion", ascending=False, kind="stable").reset_index(drop=True)
    return table if k is None else table.head(int(k))


def by_item(table: pd.DataFrame) -> pd.DataFrame:
    """The (item, class) rows as one row per item, as `review()` shows them: `given` (the set
    given), `suggested` (the held-out set), `score` (its most suspicious decision's
    suspicion), `confidence` (that decision's held-out probability of the held-out answer)
    and `reason` in words, most suspicious first."""
    rows = []
    for item_id, part in table.groupby("item_id", sort=False):
        doubts = part[part["suspicion"] > 0.5]
        words = ", ".join(f"{c!s} {'given' if g else 'left out'} (held-out p {p:.0%})"
                          for c, g, p in zip(doubts["class"], doubts["given"], doubts["p_held_out"]))
        top = part.iloc[0]  # the table is sorted: the item's most suspicious decision first
        rows.append({"item_id": item_id, "given": top["label"], "suggested": top["suggested"],
                     "score": float(top["suspicion"]), "confidence": float(top["suspicion"]),
                     "reason": f"models trained without this label doubt: {words or 'nothing'}"})
    frame = pd.DataFrame(rows, columns=["item_id", "given", "suggested", "score", "confidence", "reason"])
    return frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
