"""The folds of `suspects()`' cross-fitting, run in this process or on the session's Dask
cluster, with the same results.

A fold trains a fresh clone of the session's learner on the other folds' labels and scores
its held-out labels (see `workbench.loop.cleaning`). Everything it needs travels in a
`FoldJob`: the unfitted clone, exactly what `session.inputs.fit` hands the learner (the
training rows' features and labels and, for a semi-supervised learner, the unlabeled rows'
features and the neighbour graph over both), and the held-out rows' features. Never
the session, its store or the whole pool. `run_fold` is the fold's math, the one function
that runs it in both places:

- no cluster (`session.cluster` is None): the folds run here, one after the other, each job
  made just before it runs (one fold's copies in memory at a time);
- a cluster (`Session(..., cluster=client)` or `WORKBENCH_DASK_SCHEDULER`): each fold of a
  pass is one task (`workbench.data.jobs.map_parts`, "suspects folds" in the dashboard), and
  only its probabilities come back (held-out rows x classes).

The job carries its rows rather than scattering the pool's features once: a task's
arguments stay with the scheduler, so a fold whose worker dies runs again on another one
(Dask's `allowed-failures`); a fold that still cannot finish raises `ClusterJobFailed`
naming the fold, and nothing has changed (suspects() reads labels, never writes them).
What a fold sends, for a 50,000-item pool of 128-d features and 2,000 labels: the unlabeled
rows' features (24 MB) and the pool's neighbour graph (a sparse matrix of about 19 edges an
item, 8 MB, and the rows' positions), about 33 MB a fold; every fold of a pass is sent at once,
so the scheduler holds a pass's worth (5 x 33 MB) while it runs. Timed against this process
in benchmarks/suspects_cluster.py.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from workbench.data.jobs import map_parts
from workbench.learn.learners import features_for
from workbench.learn.model import aligned, class_columns
from workbench.learn.threads import limit_threads

__all__ = ["FoldJob", "check_folds", "labeled_for_folds", "one_pass", "run_fold"]

WHAT = "suspects folds"  # the job's name in messages, task keys and the dashboard


@dataclass(frozen=True)
class FoldJob:
    """One fold of one pass: `learner` (an unfitted clone) is fitted as
    `learner.fit(X, y, **extra)`, then scores `X_held`; `n_unlabeled` is how many unlabeled
    rows it was given (label spreading's view of the held-out items, the first of them, is
    used only when it covers them all); `held`: the held-out items' indices among the labels."""

    learner: object
    X: np.ndarray
    y: np.ndarray
    extra: dict
    X_held: np.ndarray
    n_unlabeled: int
    names: list
    held: np.ndarray
    fold: int
    folds: int
    pass_number: int

    def describe(self) -> str:
        """For error messages: which fold could not finish."""
        return (f"fold {self.fold + 1} of {self.folds} (pass {self.pass_number}, "
                f"{len(self.held)} held-out labels)")


def check_folds(folds) -> int:
    """`folds` as an int, once it is a whole number of at least 2."""
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
        raise ValueError(f"folds must be an int of at least 2, got {folds!r}")
    return int(folds)


def labeled_for_folds(session, folds, *, items: str, scorer: str) -> tuple[dict, list[str]]:
    """(the session's labels, their item ids), once `folds` is a whole number of at least 2
    and there are 2 labels a fold; else a ValueError that says how many `items` (e.g.
    "labeled texts") it needs, each scored by a `scorer` ("a tagger") trained without it."""
    folds = check_folds(folds)
    labels = session.labels
    item_ids = list(labels)
    if len(item_ids) < 2 * folds:
        raise ValueError(f"suspects() needs at least {2 * folds} {items} to cross-fit over {folds} folds "
                         f"(each is scored by {scorer} trained without it); the session has "
                         f"{len(item_ids)}")
    return labels, item_ids


def run_fold(job: FoldJob) -> np.ndarray:
    """The held-out items' probabilities (len(held), classes), one column per session class:
    the learner's, averaged with label spreading's view of them when it has one."""
    learner = job.learner
    # One BLAS thread: on 2 busy cores a threaded LogisticRegression fit on the digits took
    # 100x longer (60 s instead of 0.6 s) waiting on its own threads.
    with limit_threads(1, user_api="blas"):
        learner.fit(job.X, job.y, **job.extra)
        raw = learner.predict_proba(job.X_held)
    p = _aligned(raw, learner, job.names)
    spread = getattr(learner, "transductive_proba_", None)
    if spread is not None and len(spread) == job.n_unlabeled:
        # label spreading's view of the held-out items (from their neighbours' labels),
        # averaged with the head's. Tried on the digits, seeds 0-2, the benchmark's flips at
        # 600 and 1,797 labels, one pass, margin: mean P@k 97.4% for the mean, 96.5% for the
        # head alone, 97.1% for spreading alone
        p = (p + _aligned(np.asarray(spread)[: len(job.held)], learner, job.names)) / 2
    return p


def one_pass(session, positions, values, fold, folds, rest, names, *, pruned,
             pass_number: int = 1) -> np.ndarray:
    """Each fold scored by a fresh clone of the learner trained on the other folds' labels,
    less the `pruned` ones; held-out and pruned items join the unlabeled pool. On the
    session's cluster when it has one, here otherwise."""
    features = session.inputs.features()
    proba = np.zeros((len(positions), len(names)))
    parts = [part for part in range(folds) if (fold == part).any()]

    def job(part: int) -> FoldJob:
        held = np.flatnonzero(fold == part)
        train = np.flatnonzero((fold != part) & ~pruned)
        aside = np.flatnonzero((fold != part) & pruned)
        unlabeled = np.concatenate([positions[held], positions[aside], rest]).astype(np.int64)
        learner = clone(session.learner)
        X, y, extra = fit_arguments(session.inputs, learner, positions[train], values[train], unlabeled)
        return FoldJob(learner, X, y, extra, features_for(learner, features[positions[held]]),
                       len(unlabeled), names, held, part, folds, pass_number)

    client = getattr(session, "cluster", None)
    if client is None:
        for part in parts:  # each job made just before it runs: one fold's copies at a time
            fold_job = job(part)
            proba[fold_job.held] = run_fold(fold_job)
            del fold_job  # before the next one is made: at 1,000,000 items a fold's rows are 0.5 GB
        return proba
    jobs = [job(part) for part in parts]
    for fold_job, p in zip(jobs, map_parts(run_fold, jobs, cluster=client, what=WHAT)):
        proba[fold_job.held] = p
    return proba


def fit_arguments(inputs, learner, train, y, unlabeled) -> tuple[np.ndarray, np.ndarray, dict]:
    """`(X, y, extra)`: what `inputs.fit(learner, train, y, unlabeled)` would fit `learner`
    on. Asked of `inputs.fit` itself, with a stand-in that records its call instead of
    fitting: a fold then gets exactly what a training round's learner gets (the same
    features, graph rows and keyword arguments), and the two cannot drift apart."""
    recorder = _Recorder(learner)
    inputs.fit(recorder, train, y, unlabeled)
    return recorder.calls.pop()


class _Recorder:
    """Looks like `learner` to `inputs.fit` (its `fit` signature, which says which keyword
    arguments it takes, and its other attributes, e.g. `accepts_images`); `fit` records
    `(X, y, extra)` in `calls`."""

    def __init__(self, learner):
        self._learner = learner
        self.calls = []
        calls = self.calls

        # Not a method, and it does not return self: a recorder that referred to itself (fit
        # -> self -> fit) was freed only by the cyclic collector, rarely, and held each fold's
        # copy of the unlabeled rows until then: 7.9 GB at 1,000,000 items instead of 2.5.
        def fit(X, y, **extra):
            calls.append((X, y, extra))

        try:
            fit.__signature__ = inspect.signature(learner.fit)
        except (TypeError, ValueError):  # no signature to read: it is then taken to take none
            pass
        self.fit = fit

    def __getattr__(self, name):
        if name == "_learner":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self._learner, name)


def _aligned(raw, learner, names) -> np.ndarray:
    """Probabilities with one column per session class (a fold may miss some)."""
    return aligned(raw, class_columns(learner.classes_, names), len(names), dtype=np.float64)
