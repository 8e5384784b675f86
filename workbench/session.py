"""Session: the active-learning loop a person drives, one label at a time.

    session = Session(pool, store="labels.wbstore")
    item = session.next()                  # the item most worth labeling, and why
    session.label(item.item_id, 3)         # durable in the store before it returns
    session.retrain()                      # fit, re-rank the queue, record history

Python owns all state; widgets only draw it and call these methods. The store is the
source of truth for labels: reopening it rebuilds the labels, the history and the
model the user last saw, so the queue resumes exactly where they stopped.

Honest accuracy: the model is scored on data the strategy did not choose: a held-out
test split when one exists, otherwise a random audit sample mixed into the queue
(every `audit_every`-th item) whose labels are kept out of training.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from workbench.learners import TorchClassifier, accepts_unlabeled, features_for
from workbench.pool import Pool
from workbench.queue import QueueItem, diverse_positions, rank_queue
from workbench.store import LabelStore
from workbench.strategies import get_strategy, strategy_name

HISTORY_COLUMNS = ["round", "n_labels", "accuracy", "eval_on", "n_eval", "loss",
                   "train_accuracy", "duration_s", "time"]
AUDIT = "audit"


@dataclass
class _Model:
    """What one finished training round produced."""

    learner: object
    proba: np.ndarray          # (N, C) over the whole pool, columns in session.classes order
    query_proba: np.ndarray    # what the strategy ranks by (the labels-only model's, when it differs)
    trained_on: list[str]      # item ids, so a reopened session can rebuild the same model
    labeled: list[str]         # every item labeled then (audit too): what the ranking left out


class Session:
    def __init__(self, pool: Pool, store, *, learner=None, strategy="diverse_margin", classes=None,
                 test: Pool | tuple | None = None, batch_size: int = 10, retrain_every: int | None = None,
                 audit_every: int | None = None, annotator: str | None = None, seed: int = 0,
                 resume: bool = True):
        if not isinstance(pool, Pool):
            raise TypeError(f"pool must be a workbench.Pool, got {type(pool).__name__}")
        classes = list(classes) if classes is not None else pool.classes
        if not classes or len(classes) < 2:
            raise ValueError(
                f"a session needs at least two classes, got {classes!r}; pass classes=[...] "
                "when the pool has no ground truth"
            )
        self.pool = pool
        self.classes = classes
        self.class_names = [str(c) for c in classes]
        self._by_name = dict(zip(self.class_names, classes))
        self.store = store if isinstance(store, LabelStore) else LabelStore.open(store, annotator=annotator)
        self.annotator = annotator or self.store.annotator
        self.learner = learner if learner is not None else TorchClassifier(random_state=seed)
        self.strategy = get_strategy(strategy)
        self.strategy_name = strategy_name(strategy)
        self.batch_size = batch_size
        self.retrain_every = retrain_every
        self.seed = seed
        self.test = _test_split(test) if test is not None else _test_from(pool)
        self.audit_every = audit_every if audit_every is not None else (None if self.test else 10)

        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._subscribers: list = []
        self._model: _Model | None = None
        self._history: list[dict] = []
        self._training = False
        self._retrain_again = False
        self._last_error: str | None = None
        self._labels_at_train = 0
        self._label_times: list[float] = []
        self._why: dict[str, str] = {}
        self._load_labels()
        if resume:
            self._restore()
        if self._model is None:
            self._queue = self._cold_start_queue()

    # -- reading state ----------------------------------------------------------------------
    @property
    def labels(self) -> dict:
        """Current labels, item_id -> class value."""
        with self._lock:
            return dict(self._labels)

    @property
    def history(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(self._history, columns=HISTORY_COLUMNS)

    @property
    def model(self):
        """The latest trained learner, or None before the first retrain."""
        return None if self._model is None else self._model.learner

    def peek(self, k: int = 1) -> list[QueueItem]:
        """The next `k` items to label, in queue order, without consuming them."""
        out = []
        ids = self.pool.item_ids
        with self._lock:
            done = lambda p: ids[p] in self._labels or ids[p] in self._skipped  # noqa: E731
            for position, strategy, score in self._queue.upcoming(done):
                out.append(self._queue_item(position, strategy, score))
                if len(out) >= k:
                    break
        return out

    def next(self) -> QueueItem | None:
        items = self.peek(1)
        return items[0] if items else None

    def suggest(self, item_id) -> tuple[object, float] | tuple[None, None]:
        """The model's guess for an item and its probability."""
        if self._model is None:
            return None, None
        p = self._model.proba[self.pool.position(item_id)]
        best = int(p.argmax())
        return self.classes[best], float(p[best])

    def progress(self) -> dict:
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._label_times if now - t < 600][-30:]
            span = recent[-1] - recent[0] if len(recent) >= 2 else 0.0
            rate = (len(recent) - 1) / span * 60 if span > 0 else 0.0
            n_done = len(self._labels) + len(self._skipped)
            return {"n_labeled": len(self._labels), "n_skipped": len(self._skipped),
                    "n_queued": len(self.pool) - n_done, "pool_size": len(self.pool),
                    "labels_per_minute": round(rate, 1)}

    def model_state(self) -> dict:
        with self._lock:
            last = self._history[-1] if self._history else None
            return {"training": self._training, "rounds": len(self._history),
                    "last_accuracy": None if last is None or pd.isna(last["accuracy"]) else last["accuracy"],
                    "eval_on": None if last is None else last["eval_on"],
                    "last_error": self._last_error}

    # -- acting -----------------------------------------------------------------------------
    def label(self, item_id, label, *, source: str = "human"):
        """Record a label; durable on disk when this returns. Labeling an item that
        already has a label records a relabel, keeping the old one in history."""
        item_id = str(item_id)
        self.pool.position(item_id)  # raises a clear KeyError for unknown ids
        value = self._check_label(label)
        with self._lock:
            action = "relabel" if item_id in self._labels else "label"
            query = self._why.get(item_id, "manual")
            event = self.store.append(item_id, str(value), action=action, source=source,
                                      annotator=self.annotator, query=query)
            self._labels[item_id] = value
            if query == AUDIT:
                self._audit.add(item_id)
            self._skipped.discard(item_id)
            self._label_times.append(time.monotonic())
            due = (self.retrain_every and not self._training
                   and len(self._labels) - self._labels_at_train >= self.retrain_every)
        self._emit("labels_changed")
        if due:
            self.retrain(background=True)
        return event

    def skip(self, item_id=None):
        """Put an item aside (it leaves the queue); `undo` brings it back."""
        if item_id is None:
            head = self.next()
            if head is None:
                raise ValueError("nothing to skip: the queue is empty")
            item_id = head.item_id
        item_id = str(item_id)
        self.pool.position(item_id)
        with self._lock:
            event = self.store.append(item_id, None, action="skip", source="human",
                                      annotator=self.annotator, query=self._why.get(item_id, "manual"))
            self._skipped.add(item_id)
        self._emit("labels_changed")
        return event

    def undo(self) -> str | None:
        """Retract this annotator's last label, relabel or skip; returns its item_id,
        or None when there is nothing to undo."""
        with self._lock:
            if not any(True for _ in self._own_undoable()):
                return None
            event = self.store.undo(annotator=self.annotator)
            target = self.store.events().set_index("event_id").loc[event.target]
            self._load_labels()
            self._queue.rewind()
        self._emit("labels_changed")
        return str(target["item_id"])

    # -- training ---------------------------------------------------------------------------
    def retrain(self, background: bool = False) -> Future | None:
        """Fit a fresh copy of the learner on the current labels, re-rank the queue and
        record a history row. In the background, labeling goes on meanwhile; a request
        made while training runs once more when the current round ends."""
        if not background:
            self._run_retrain()
            return None
        with self._lock:
            if self._training:
                self._retrain_again = True
                return self._future
            self._training = True
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-train")
            self._future = self._executor.submit(self._run_retrain, True)
            return self._future

    def _run_retrain(self, background: bool = False) -> None:
        with self._lock:
            self._training = True
            snapshot = dict(self._labels)
            self._labels_at_train = len(snapshot)
        self._emit("retrain_started")
        try:
            model, row = self._fit(snapshot)
        except Exception as e:  # shown to the user; labels are untouched
            with self._lock:
                self._training = False
                self._last_error = f"{type(e).__name__}: {e}"
            self._emit("retrain_failed")
            if not background:
                raise
            return
        with self._lock:
            self._model = model
            row["round"] = len(self._history) + 1
            self._history.append(row)
            self._last_error = None
            self._queue = self._rank()
            again, self._retrain_again = self._retrain_again, False
            self._training = again
            self._save_state()
        self._emit("retrain_finished")
        if again:
            self._run_retrain(background)

    def _fit(self, labels: dict) -> tuple[_Model, dict]:
        audit = self._audit_ids()
        train_ids = [i for i in labels if i not in audit]
        y = [labels[i] for i in train_ids]
        if len(set(map(str, y))) < 2:
            raise ValueError(f"need labels of at least 2 classes to train, have {len(y)} labels of "
                             f"{len(set(map(str, y)))} class(es); label a few more items")
        started = time.perf_counter()
        learner = clone(self.learner)
        X = features_for(learner, self.pool.X[self.pool.positions(train_ids)])
        extra = {}
        if accepts_unlabeled(learner):  # self-training learners also learn from the rest of the pool
            # Audit items are left out too: pseudo-labeling them would grade the model on
            # its own guesses.
            unlabeled = ~self.pool.item_ids.isin(list(labels))
            extra["X_unlabeled"] = features_for(learner, self.pool.X[unlabeled])
        learner.fit(X, np.asarray(y, dtype=object if isinstance(y[0], str) else None), **extra)
        pool_X = features_for(learner, self.pool.X)
        proba = self._aligned_proba(learner.predict_proba, learner, pool_X)
        # Self-training learners rank uncertainty with the model that saw only people's
        # labels; suggestions and accuracy come from the final model.
        query_proba = (self._aligned_proba(learner.query_proba, learner, pool_X)
                       if getattr(learner, "n_pseudo_labels_", 0) and hasattr(learner, "query_proba")
                       else proba)
        accuracy, eval_on, n_eval = self._evaluate(learner, labels, audit)
        curve = getattr(learner, "history_", None) or []
        row = {"n_labels": len(train_ids), "accuracy": accuracy, "eval_on": eval_on,
               "n_eval": n_eval, "loss": [float(c["loss"]) for c in curve],
               "train_accuracy": [float(c["accuracy"]) for c in curve],
               "duration_s": round(time.perf_counter() - started, 3),
               "time": pd.Timestamp.now(tz="UTC").isoformat()}
        return _Model(learner, proba, query_proba, train_ids, list(labels)), row

    def _aligned_proba(self, predict, learner, X) -> np.ndarray:
        """Probabilities with one column per session class, even when the labels so far
        cover only some classes (the learner's classes_ is then a subset)."""
        raw = predict(X)
        proba = np.zeros((len(X), len(self.classes)), dtype=np.float32)
        index = {name: j for j, name in enumerate(self.class_names)}
        for k, c in enumerate(learner.classes_):
            proba[:, index[str(c)]] = raw[:, k]
        return proba

    def _evaluate(self, learner, labels, audit) -> tuple[float, str, int]:
        if self.test is not None:
            X, y = self.test
            pred = learner.predict(features_for(learner, X))
            accuracy = float(np.mean(pred.astype(str) == y.astype(str)))
            return accuracy, f"held-out test split ({len(y)} items)", len(y)
        audited = [i for i in audit if i in labels]
        if len(audited) < 5:
            return float("nan"), f"audit sample too small ({len(audited)} of 5 needed)", len(audited)
        pred = learner.predict(features_for(learner, self.pool.X[self.pool.positions(audited)]))
        truth = np.array([str(labels[i]) for i in audited])
        accuracy = float(np.mean(pred.astype(str) == truth))
        return accuracy, f"random audit sample ({len(audited)} items)", len(audited)

    # -- the queue ----------------------------------------------------------------------------
    def _rank(self):
        """Rank what was unlabeled when the model was trained, not now: the ranking is then
        a function of the training round alone, and a reopened session, which retrains on
        the same labels, rebuilds the very same queue (batch-aware strategies such as
        diverse_margin would otherwise group the candidates differently)."""
        proba = self._model.query_proba
        unlabeled = np.flatnonzero(~self.pool.item_ids.isin(self._model.labeled + list(self._skipped)))
        if getattr(self.strategy, "needs_samples", False):
            learner = self._model.learner
            X = features_for(learner, self.pool.X[unlabeled])
            if not hasattr(learner, "predict_proba_samples"):
                raise ValueError(f"strategy {self.strategy_name!r} needs a learner with MC-dropout "
                                 f"samples (predict_proba_samples), got {type(learner).__name__}")
            query = self.strategy(learner.predict_proba_samples(X), len(unlabeled),
                                  rng=self.seed + len(self._history))
        elif getattr(self.strategy, "needs_features", False):
            query = self.strategy(proba[unlabeled], len(unlabeled), features=self.pool.X[unlabeled],
                                  batch=self.batch_size, rng=self.seed + len(self._history))
        else:
            query = self.strategy(proba[unlabeled], len(unlabeled), rng=self.seed + len(self._history))
        return rank_queue(unlabeled[query.positions], query.scores, self.strategy_name,
                          audit_every=self.audit_every, n_items=len(self.pool),
                          rng=self.seed + 7919 * (len(self._history) + 1))

    def _cold_start_queue(self):
        """No model yet: begin with a diverse batch (one item per k-means cluster), then
        random items, so the first labels cover the data instead of one corner of it."""
        first = diverse_positions(self.pool.X, max(self.batch_size, 2 * len(self.classes)), seed=self.seed)
        rest = np.random.default_rng(self.seed).permutation(len(self.pool))
        order = np.concatenate([first, rest[~np.isin(rest, first)]])
        return rank_queue(order, None, "cold-start", audit_every=self.audit_every,
                          n_items=len(self.pool), rng=self.seed)

    def _queue_item(self, position, strategy, score) -> QueueItem:
        item_id = self.pool.item_ids[position]
        self._why[item_id] = strategy
        suggestion, confidence = (None, None)
        top = None
        if self._model is not None:
            p = self._model.proba[position]
            top = np.argsort(p)[::-1][:2]
            suggestion, confidence = self.classes[int(top[0])], float(p[top[0]])
        return QueueItem(item_id=item_id, position=int(position), strategy=strategy,
                         score=None if score is None else float(score), suggestion=suggestion,
                         confidence=confidence,
                         reason=_reason(strategy, score, self.class_names,
                                        self._model.query_proba[position] if top is not None else None))

    def _audit_ids(self) -> set[str]:
        if self.test is not None or not self.audit_every:
            return set()
        return set(self._audit)

    # -- persistence -------------------------------------------------------------------------
    def _load_labels(self) -> None:
        current = self.store.current_labels()
        self._labels = {}
        for item_id, row in current.iterrows():
            if item_id in self.pool:
                self._labels[item_id] = self._check_label(row["label"])
        self._skipped = {i for i in self.store.skipped() if i not in self._labels}
        self._audit = {i for i, q in current["query"].items() if q == AUDIT} if len(current) else set()

    def _own_undoable(self):
        events = self.store.events()
        mine = events[events["annotator"] == self.annotator]
        retracted = set(mine.loc[mine["action"] == "undo", "target"])
        return (e for e in mine.itertuples() if e.action != "undo" and e.event_id not in retracted)

    @property
    def _state_path(self):
        return self.store.path / f"_session-{_safe(self.annotator)}.json"

    def _save_state(self) -> None:
        state = {"history": self._history, "trained_on": self._model.trained_on,
                 "labeled_at_train": self._model.labeled,
                 "strategy": self.strategy_name}
        tmp = self._state_path.with_name("." + self._state_path.name + ".tmp")
        tmp.write_text(json.dumps(state, default=float))
        os.replace(tmp, self._state_path)

    def _restore(self) -> None:
        """Rebuild the model the user last saw from the labels it was trained on, so the
        queue comes back in the same order (training is seeded)."""
        if not self._state_path.exists():
            return
        state = json.loads(self._state_path.read_text())
        self._history = state.get("history", [])
        known = state.get("labeled_at_train", state.get("trained_on", []))
        trained = {i: self._labels[i] for i in known if i in self._labels}
        if len(set(map(str, trained.values()))) >= 2:
            self._model, _ = self._fit(trained)
            self._labels_at_train = len(trained)
            self._queue = self._rank()

    # -- helpers --------------------------------------------------------------------------------
    def _check_label(self, label):
        key = str(label.item() if hasattr(label, "item") else label)
        if key not in self._by_name:
            raise ValueError(f"label {label!r} is not one of the classes {self.class_names}")
        return self._by_name[key]

    def subscribe(self, callback):
        """Call `callback(event)` on "labels_changed", "retrain_started",
        "retrain_finished" and "retrain_failed" (possibly from a background thread)."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _emit(self, event: str) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def widget(self, **kw):
        from workbench.widgets import LabelWidget

        return LabelWidget(self, **kw)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __repr__(self) -> str:
        p = self.progress()
        return (f"Session({self.pool.name!r}, {p['n_labeled']}/{p['pool_size']} labeled, "
                f"strategy={self.strategy_name}, learner={type(self.learner).__name__}, "
                f"store={str(self.store.path)!r})")


def _test_from(pool: Pool):
    return None if pool.X_test is None else (pool.X_test, pool.y_test)


def _test_split(test) -> tuple[np.ndarray, np.ndarray]:
    """A held-out split as (X, y), given as a Pool with ground truth or as a pair."""
    if isinstance(test, Pool):
        if not test.has_ground_truth:
            raise ValueError(f"test pool {test.name!r} has no ground truth labels to score against")
        return test.X, test.y
    try:
        X, y = test
    except (TypeError, ValueError):
        raise ValueError(f"test must be a Pool with ground truth or a pair (X, y), got {type(test).__name__}"
                         ) from None
    X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"test X has {len(X)} rows but y has {len(y)} labels")
    return X, y


def _reason(strategy, score, class_names, p) -> str:
    if strategy == "cold-start":
        return "cold start: a diverse first pick (no model yet)"
    if strategy == AUDIT:
        return "audit: a random item, kept out of training to measure accuracy honestly"
    if p is None:
        return strategy
    top = np.argsort(p)[::-1][:2]
    a, b = class_names[int(top[0])], class_names[int(top[1])]
    guess = f"{a} ({p[top[0]]:.0%}) vs {b} ({p[top[1]]:.0%})"
    if strategy in ("margin", "diverse_margin"):
        gap = -score
        feeling = "the model hesitates between" if gap < 0.3 else "the closest call left:"
        return f"margin {gap:.2f}: {feeling} {guess}"
    if strategy == "least_confidence":
        return f"least confidence: top guess only {p[top[0]]:.0%} ({guess})"
    if strategy == "entropy":
        return f"entropy {score:.2f} nats: probability spread over classes ({guess})"
    if strategy == "bald":
        return f"BALD {score:.3f}: dropout samples of the model disagree ({guess})"
    if strategy == "random":
        return f"random pick ({guess})"
    return f"{strategy} score {score:.3g} ({guess})"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
