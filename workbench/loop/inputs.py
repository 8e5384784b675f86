"""What a session's learner sees, and scores computed only when they are needed.

A learner that says `uses_representation` (the default `LightHead`) is trained on the
pool's representation, learned once in the background and cached (see
`workbench.data.representation`), and, when it takes one, on the pool's neighbour graph;
any other learner (a scikit-learn classifier, `TorchClassifier`) sees the pool's own
features, exactly as before. `Session(representation=True)` hands every learner the
representation; `False` never does.

`Scores` holds a model's probabilities for pool items, computed on first use: the
suggestions of a round are needed only for the few items the widget shows, and the ranking
needs only the unlabeled candidates, so a round never scores the whole pool twice.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable

import numpy as np

from workbench.data.encoders import Encoder
from workbench.data.jobs import ClusterJobFailed
from workbench.data.pretrained import pretrained
from workbench.data.representation import Representation, RepresentationJob, cache_at
from workbench.data.unique import unique_ints
from workbench.learn.head import accepts_graph
from workbench.learn.learners import accepts_unlabeled, features_for, fit_takes
from workbench.learn.multilabel import MultiLabelHead
from workbench.learn.spreading import NeighbourGraph, steps_for
from workbench.loop.training import run_nicely

_WARMING: weakref.WeakSet[LearnerInputs] = weakref.WeakSet()  # inputs whose warm-up may run


@atexit.register
def _stop_warming() -> None:
    """Let every warm-up finish its step before the interpreter tears down torch (a script
    that ends without closing its session)."""
    for inputs in list(_WARMING):
        inputs.close()


class LearnerInputs:
    """The features a session's learner is trained and scored on."""

    def __init__(self, pool, learner, *, representation="auto", cache=None,
                 on_progress: Callable[[dict], None] | None = None, encoder=None, cluster=None,
                 X_test=None):
        representation = resolve_representation(representation)
        if isinstance(representation, Encoder):  # a pretrained model: the pool is encoded with it
            if encoder is not None:
                raise ValueError("a session started from a model encodes the pool with that model's "
                                 "encoder; pass start_from= or representation=<an encoder>, not both")
            encoder, representation = representation, True
        self.pool = pool
        self.given_encoder = encoder
        self.uses_representation = bool(getattr(learner, "uses_representation", False)
                                        if representation == "auto" else representation)
        # a learner that reads the items themselves (learner="finetune") beside a representation
        # that is still built, for the neighbour graph, the map and duplicates
        self.reads_items = bool(getattr(learner, "reads_items", False))
        # a given encoder (a bundle's): the pool is encoded with it instead of learning one
        # `cluster`: a dask.distributed.Client whose workers encode the pool's parts, or None
        self._start = lambda: RepresentationJob.start(pool, cache=cache_at(cache), on_progress=on_progress,
                                                      encoder=encoder, cluster=cluster)
        self.job = self._start() if self.uses_representation else None
        self._test: tuple[object, np.ndarray] | None = None
        self._test_lock = threading.Lock()
        self._closed = threading.Event()
        self._warming = None
        if self.job is not None:  # the first round finds them made
            self._warming = threading.Thread(target=self._warm_up, args=(learner, X_test),
                                             name="workbench-warm-up", daemon=True)
            _WARMING.add(self)
            self._warming.start()

    def _warm_up(self, learner, X_test) -> None:
        """Once the representation is ready, make what the first round would otherwise wait
        for: the graph's sparse matrix, which label spreading multiplies by, if it came
        without one (milliseconds below the exact-search size; 7 s at 1,000,000 items for a
        cache file saved before 2026-12-07), and the held-out split's features (2.4 s of a
        first round at 1,000,000 items, most of it importing torch; measured 2026-12-07).
        Nothing once the session is closed."""
        run_nicely()
        try:
            while not self.job.done():  # the representation, or the session's close, first
                if self._closed.wait(0.25):
                    return
            rep = self.job.result()
            if rep.has_graph and accepts_graph(learner):
                rep.graph_matrix()
            if X_test is not None and not self._closed.is_set():
                self.test_features(X_test)
        except Exception:  # noqa: S110 - the round that needs them reports the error
            return

    def close(self) -> None:
        """Stop the warm-up, after the step it is in (encoding a held-out split takes seconds):
        torch still working in a daemon thread as the interpreter exits aborts the process."""
        self._closed.set()
        if self._warming is not None and self._warming is not threading.current_thread():
            self._warming.join(timeout=60)

    def state(self) -> dict | None:
        """The representation's progress ({"status", "progress", "message"}), None if unused."""
        return None if self.job is None else self.job.state()

    def ready(self) -> bool:
        """Whether `features()` answers without waiting (False while the representation is
        learned, and for good if learning it failed)."""
        return self.job is None or (self.job.done() and self.job.state()["status"] == "ready")

    def representation(self) -> Representation | None:
        """The pool's representation (`features`, `has_graph`, `neighbors`, ...), waiting while
        it is being learned. None when the session's learner does not use one: it learns from
        the pool's own features (`pool.X`), and no representation is built; pass
        `Session(..., representation=True)` to have one built for any learner.

        When building it failed because the Dask cluster did (`ClusterJobFailed`: its workers
        died), this raises that error and starts building it again, so that the next call
        (the next round) gets it once the cluster is back; labels are never touched."""
        if self.job is None:
            return None
        try:
            return self.job.result()
        except ClusterJobFailed:
            if self.job.done():  # once per failure: a second caller finds the new job running
                self.job = self._start()
            raise

    def features(self) -> np.ndarray:
        """Row i: what the learner sees of pool item i."""
        rep = self.representation()
        return self.pool.X if rep is None or self.reads_items else rep.features

    def test_features(self, X_test: np.ndarray) -> np.ndarray:
        """A held-out split, encoded like the pool (computed once per split)."""
        rep = self.representation()
        if rep is None or self.reads_items:
            return X_test
        with self._test_lock:  # the warm-up thread and a round encode it once between them
            if self._test is None or self._test[0] is not X_test:
                self._test = (X_test, rep.transform(X_test))
            return self._test[1]

    def fit(self, learner, train: np.ndarray, y: np.ndarray, unlabeled: np.ndarray, prior=None):
        """Fit `learner` on the items at positions `train` (labels `y`); learners that take
        them also get the `unlabeled` items and, over both, the neighbour graph, and
        `prior`, `(proba over the pool, classes)` from a model the session started from."""
        features = self.features()
        extra = {}
        if prior is not None and fit_takes(learner, "prior"):
            extra["prior"] = (prior[0][unlabeled], prior[1])
        elif prior is not None:  # any other learner learns the prior's confident calls as labels
            train, y, unlabeled = with_prior_labels(prior, train, y, unlabeled,
                                                    partial=isinstance(learner, MultiLabelHead))
        if accepts_unlabeled(learner):
            extra["X_unlabeled"] = features_for(learner, features[unlabeled])
            rep = self.representation()
            if rep is not None and rep.has_graph and accepts_graph(learner):
                extra["graph"] = graph_rows(rep, train, unlabeled)
        return learner.fit(features_for(learner, features[train]), y, **extra)


def resolve_representation(representation):
    """'auto', True or False as they are; a spec ("timm:resnet18"), a torch module or a
    function as its pretrained encoder (`workbench.data.pretrained`), loaded once."""
    if isinstance(representation, bool) or representation == "auto" or isinstance(representation, Encoder):
        return representation
    if isinstance(representation, str) and ":" not in representation:
        raise ValueError(f"representation must be 'auto', True or False, or a pretrained encoder: "
                         f"'timm:resnet18', a torch.nn.Module or a function; got {representation!r}")
    return pretrained(representation)


PRIOR_CONFIDENCE = 0.9  # a prior's call this sure becomes a training label (learners without `prior`)
MAX_PRIOR_LABELS = 2000


def with_prior_labels(prior, train: np.ndarray, y: np.ndarray, unlabeled: np.ndarray, *,
                      partial: bool = False):
    """`train`, `y` and `unlabeled` with up to MAX_PRIOR_LABELS unlabeled items (a seeded
    sample) that the prior gives at least PRIOR_CONFIDENCE added as labeled by its call: how
    a learner that cannot take a prior keeps what the model it started from knew.

    With `y` a 0/1 matrix (a multi-label session), a class's call is sure at p >=
    PRIOR_CONFIDENCE or <= 1 - PRIOR_CONFIDENCE. A learner that takes `partial` answers (-1:
    not known, as MultiLabelHead does) learns every item with a sure call, each class from its
    sure calls only; any other learns the items whose every call is sure."""
    proba, classes = prior
    multi = y.ndim == 2
    sure_calls = (np.maximum(proba, 1 - proba) if multi else proba) >= PRIOR_CONFIDENCE
    sure = unlabeled[sure_calls[unlabeled].all(axis=1) if multi and not partial
                     else sure_calls[unlabeled].any(axis=1)]
    if len(sure) > MAX_PRIOR_LABELS:
        sure = np.sort(np.random.default_rng(0).choice(sure, MAX_PRIOR_LABELS, replace=False))
    if multi:
        y = np.vstack([y, np.where(sure_calls[sure], proba[sure] >= 0.5, -1).astype(y.dtype)])
    else:
        y = np.asarray(list(y) + [classes[i] for i in proba[sure].argmax(axis=1)], dtype=y.dtype)
    return np.concatenate([train, sure]), y, np.setdiff1d(unlabeled, sure)


def graph_rows(rep: Representation, train: np.ndarray, unlabeled: np.ndarray) -> NeighbourGraph:
    """The pool's neighbour graph with the rows `[train; unlabeled]`; edges to other items
    (audit items, whose labels must not spread) do not count."""
    matrix, slot = rep.graph_matrix()
    return NeighbourGraph(matrix, slot[np.concatenate([train, unlabeled])].astype(np.int64),
                          steps_for(rep.neighbors.shape[1]))


class Scores:
    """Class probabilities of pool items, computed the first time they are asked for, in
    blocks of `block` neighbouring positions (one call per block: a loop over a pool's items
    costs one prediction per thousand, and showing a few items a handful of small ones).
    `compute(positions) -> (len(positions), n_classes)`; `fill` stores rows known already
    (label spreading gives every unlabeled item's for free).

    Kept in this process on a cluster too, measured (benchmarks/cluster_jobs.py, 2 cores):
    the default head scores 1,000,000 items of 128-d in 1.5 s here, 4.6 s as 16 parts on 2
    workers, most of it sending the 488 MB of features; and a round rarely scores that many."""

    def __init__(self, n_items: int, n_classes: int, compute: Callable[[np.ndarray], np.ndarray],
                 block: int = 1024):
        self._rows = np.zeros((n_items, n_classes), dtype=np.float32)
        self._known = np.zeros(n_items, dtype=bool)
        self._compute = compute
        self._block = block

    def fill(self, positions, rows) -> Scores:
        self._rows[positions] = rows
        self._known[positions] = True
        return self

    def warm(self, positions) -> Scores:
        """Compute these rows now, exactly these (not their blocks): a round does it in the
        background for the head of its queue, so that serving an item never waits for a
        prediction."""
        wanted = unique_ints(np.asarray(positions, dtype=np.int64))
        missing = wanted[~self._known[wanted]]
        return self.fill(missing, self._compute(missing)) if len(missing) else self

    def __getitem__(self, positions):
        one = np.ndim(positions) == 0
        wanted = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        missing = wanted[~self._known[wanted]]
        if len(missing):  # every unknown row of the blocks asked about: O(rows of those blocks)
            starts = unique_ints(missing // self._block) * self._block
            todo = (starts[:, None] + np.arange(self._block)).ravel()
            todo = todo[todo < len(self._rows)]
            todo = todo[~self._known[todo]]
            self.fill(todo, self._compute(todo))
        return self._rows[int(positions)] if one else self._rows[wanted]

    def __len__(self) -> int:
        return len(self._rows)
