"""Session: the active-learning loop a person drives, one label at a time.

    session = Session(pool, store="labels.wbstore")
    item = session.next()                  # the item most worth labeling, and why
    session.label(item, 3)                 # durable in the store before it returns
    session.undo()                         # takes back exactly that label
    session.retrain()                      # fit, re-rank the queue, record history

Python owns all state; widgets only draw it and call these methods. The store is the
source of truth for labels: reopening it rebuilds the labels, the history and the model
the user last saw, so the queue resumes exactly where they stopped. Several sessions may
share one store (two notebooks, two people): each picks up the others' labels within about
a second and never serves an item another one is showing (see `workbench.store.claims`).

What the store records is what the person saw and did: every label carries the role its
item was shown in (the strategy that ranked it, "cold-start" or "audit"), and an undo names
the events it takes back.

Honest accuracy: the model is scored on data the strategy did not choose: a held-out test
split when one exists, otherwise the audit sample (see `workbench.learn.queue`), whose
labels are kept out of training.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from workbench.data.pool import Pool
from workbench.learn.head import LightHead
from workbench.learn.learners import features_for
from workbench.learn.metrics import HEADLINE_HALF_WIDTH, accuracy_headline, accuracy_interval
from workbench.learn.metrics import scores as metric_scores
from workbench.learn.model import InputSignature, Model
from workbench.learn.queue import (
    AUDIT,
    COLD_START,
    QueueItem,
    audit_reserve,
    build_queue,
    diverse_positions,
    overlap_items,
)
from workbench.learn.strategies import get_strategy, strategy_name
from workbench.loop import pool_source
from workbench.loop.agreement import ADJUDICATION, agreement, annotations
from workbench.loop.focus import Focuses
from workbench.loop.inputs import LearnerInputs, Scores
from workbench.loop.review import REVIEW, Reviewing
from workbench.loop.start_from import learner_after, open_start, start_proba
from workbench.loop.training import Trainer
from workbench.loop.watch import Watcher
from workbench.store import LabelStore
from workbench.store.claims import Claims
from workbench.store.errors import StoreError
from workbench.store.views import labels_hash

log = logging.getLogger(__name__)
HISTORY_COLUMNS = ["round", "n_labels", "accuracy", "eval_on", "n_eval", "loss",
                   "train_accuracy", "duration_s", "time", "labels_hash",
                   "macro_f1", "balanced_accuracy", "recall"]
EARLY_AUDIT_EVERY = 4  # the audit pace, left to the default, until the accuracy is known +-10 points
MANUAL = "manual"  # the role of an item labeled without being served by the queue
EVENTS = ("labels_changed", "retrain_started", "retrain_finished", "retrain_failed",
          "representation_progress")
# The open session of each (store, annotator) in this process: re-running a notebook cell
# makes a new session, and the one it replaces must stop claiming items and polling.
_OPEN: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


@dataclass
class _Model:
    """What one finished training round produced."""

    learner: object
    proba: Scores              # (N, C) over the pool, columns in session.classes order, on demand
    query_proba: Scores        # what the strategy ranks by (the labels-only model's, when it differs)
    trained_on: list[str]      # item ids, so a reopened session can rebuild the same model
    labeled: list[str]         # every item labeled then (audit too): what the ranking left out
    round: int
    self_trained: bool
    predictor: Model           # the learner with what it reads: items in, probabilities out


class Session(Reviewing):
    def __init__(self, pool: Pool, store, *, learner=None, strategy="diverse_margin", classes=None,
                 test: Pool | tuple | None = None, batch_size: int = 10, retrain_every: int | None = None,
                 audit_every: int | None = None, annotator: str | None = None, seed: int = 0,
                 resume: bool = True, watch: bool = True, at: str | None = None,
                 overlap: float = 0.0, representation="auto", representation_cache=None,
                 start_from=None):
        if not isinstance(pool, Pool):
            raise TypeError(f"pool must be a workbench.Pool, got {type(pool).__name__}")
        classes = list(classes) if classes is not None else pool.classes
        # A model trained elsewhere (a bundle, a registry name): round 0, see loop/start_from.py
        self._start, classes = (open_start(start_from, pool, classes) if start_from is not None
                                else (None, classes))
        if not classes or len(classes) < 2:
            raise ValueError(
                f"a session needs at least two classes, got {classes!r}; pass classes=[...] "
                "when the pool has no ground truth"
            )
        self.pool = pool
        self.signature = InputSignature.of(pool)  # what the model reads (see learn/model.py)
        self.classes = classes
        self.class_names = [str(c) for c in classes]
        self._by_name = dict(zip(self.class_names, classes))
        self.store = store if isinstance(store, LabelStore) else LabelStore.open(store, annotator=annotator)
        self.annotator = annotator or self.store.annotator
        # `at`: train and evaluate on the labels of a commit, read-only (an old model rebuilt).
        self.at = None if at is None else self.store.rev(at).id
        self.store.bind(classes=self.class_names, n_items=len(pool),
                        items_hash=labels_hash(pool.item_ids, [""] * len(pool)))
        pool_source.record(self.store, pool)  # so the store alone can reopen it: Session.open
        # The default: a light head on the pool's representation, learned once in the
        # background and cached (see workbench.loop.inputs); other learners see pool.X.
        self.learner = (learner if learner is not None else LightHead(random_state=seed)
                        if self._start is None else learner_after(self._start, seed))
        self.strategy = get_strategy(strategy)
        self.strategy_name = strategy_name(strategy)
        _check_strategy_fits(self.strategy, self.strategy_name, self.learner)
        self.batch_size = batch_size
        self.retrain_every = retrain_every
        self.seed = seed
        self.test = _test_split(test) if test is not None else _test_from(pool)
        self._subscribers: list = []  # before the representation job, which reports progress
        self.inputs = LearnerInputs(pool, self.learner, representation=representation,
                                    cache=representation_cache,
                                    on_progress=lambda state: self._emit("representation_progress"),
                                    encoder=None if self._start is None else self._start.encoder)
        self._prior = None  # (the start model's probabilities over the pool, classes)
        self.audit_every = audit_every if audit_every is not None else (None if self.test else 10)
        # Left to the default, audit labels come faster (every EARLY_AUDIT_EVERY-th item) until
        # they measure the accuracy within +-10 points: a figure on 5 audit labels says nothing.
        self._audit_paced = audit_every is None and self.test is None
        self._reserve = audit_reserve(pool.item_ids, self.audit_every)  # positions, serving order
        self.overlap = overlap
        self._overlap = overlap_items(pool.item_ids, overlap)  # served to two annotators
        self._in_reserve = np.zeros(len(pool), dtype=bool)
        self._in_reserve[self._reserve] = True

        self._lock = threading.RLock()
        self._round_lock = threading.Lock()  # one training round at a time, foreground or not
        self._subscribers: list = [self._rereview]  # an open review is re-ranked after a round
        self._model: _Model | None = None
        self._history: list[dict] = []
        self._rounds_running = 0
        self._rounds_done = 0  # rounds trained here: a model rebuilt in the background yields to them
        self._rebuild: tuple | None = None  # (labels, audit, round) _restore could not rebuild at once
        self._last_error: str | None = None
        self._labels_at_train = 0
        self._version = 0  # counts changes of the labels: the trainer skips rounds with nothing new
        self._label_times: list[float] = []
        self._issued: dict[str, list[str]] = {}  # item -> the roles this session showed it in
        self._actions: list[tuple[str, ...]] = []  # this session's undo stack: event ids per action
        self._annotations: dict[str, dict[str, str]] = {}  # overlap item -> annotator -> label
        self._focuses = Focuses()  # queues shown on request, before the ranked one (loop/focus.py)
        self._closed: str | None = None  # why this session no longer acts, once it does not
        self._cold_start_waits = False
        self._review_table, self._review_k = None, None  # an open review (see loop/review.py)
        key = (os.path.realpath(self.store.path), self.store.current_branch, self.annotator)
        replaced = _OPEN.get(key)
        if replaced is not None:
            replaced.close(reason="replaced by a newer Session on the same store and annotator",
                           wait=False)
        _OPEN[key] = self
        self._claims = Claims(self.store.path, annotator=self.annotator)
        self._trainer = Trainer(self._train_round, lambda: self._version)
        self.store.sync()  # start counting other writers' events before reading the state
        self._load_labels()
        if self._overlap and self.at is None:
            self._reannotate(self._overlap)
        if self._start is not None:  # before a restored round: it learns from this prior too
            self._prior = (start_proba(self._start, self.inputs, pool), self.classes)
        if resume and self.at is None:
            self._restore()
        if self._model is None:
            self._queue = self._start_queue() if self._start is not None else self._cold_start_queue()
        if self._rebuild is not None:  # after the queue above, which the rebuilt model replaces
            self._trainer.first(self._rebuild_round)
        self._watcher = Watcher(self.sync) if watch and self.at is None else None

    @classmethod
    def open(cls, store, **options) -> Session:
        """Reopen a session from its store alone: the pool is read again from where the
        store records it came from (see `workbench.loop.pool_source`), the classes are the
        store's; `options` as for `Session(...)`."""
        pool = pool_source.rebuild(store, otherwise="open it with Session(pool, store) and the "
                                                    "pool it labels")
        options.setdefault("classes", pool_source.classes_for(store, pool))
        return cls(pool, store, **options)

    # -- reading state ----------------------------------------------------------------------
    @property
    def labels(self) -> dict:
        """Current labels, item_id -> class value (every annotator's)."""
        with self._lock:
            return dict(self._labels)

    def pool_proba(self, positions, *, labels_only: bool = False) -> np.ndarray | None:
        """Class probabilities of the pool items at `positions` from the latest model, None
        before the first one: the final model's (suggestions), or with `labels_only` those of
        the model trained on people's labels alone (the one the queue ranks by)."""
        model = self._model  # one read: a round may replace it meanwhile
        if model is None:
            return None
        return np.asarray((model.query_proba if labels_only else model.proba)[positions])

    @property
    def audit_positions(self) -> np.ndarray:
        """Pool positions of the items that audit slots may serve (kept out of training)."""
        return self._reserve.copy()

    def label_of(self, item_id: str):
        """The item's current label (a class value), None if it has none."""
        with self._lock:
            return self._labels.get(str(item_id))

    @property
    def history(self) -> pd.DataFrame:
        """One row per training round: n_labels, accuracy with its Wilson 95% interval
        (accuracy_low, accuracy_high) on n_eval items of eval_on, macro-F1, balanced accuracy,
        recall per class, the loss curve, duration and the labels' hash."""
        with self._lock:
            frame = pd.DataFrame(self._history, columns=HISTORY_COLUMNS)
        bounds = [accuracy_interval(a, n) for a, n in zip(frame["accuracy"], frame["n_eval"])]
        at = frame.columns.get_loc("n_eval") + 1
        frame.insert(at, "accuracy_low", pd.Series([b[0] for b in bounds], dtype=float))
        frame.insert(at + 1, "accuracy_high", pd.Series([b[1] for b in bounds], dtype=float))
        return frame

    @property
    def model(self) -> Model | None:
        """The latest trained model (`workbench.learn.model.Model`: `predict_proba(items)` on
        a pool, its features or raw items; `.learner` is the fitted estimator), or None before
        the first retrain."""
        return None if self._model is None else self._model.predictor

    def peek(self, k: int = 1) -> list[QueueItem]:
        """The next `k` items to label, in queue order, without consuming them.

        The items are claimed for this session: no other session on the store is served
        them until they are labeled or released (see `release`).
        """
        self._check_open(writing=False)
        ids = self.pool.item_ids
        out: list[QueueItem] = []
        with self._lock, self._claims.claiming() as taken:
            self._sync_locked()  # after reading the claims: an item is seen claimed or labeled
            self._respread_cold_start()
            blocked = lambda item: self._blocked(item, taken)  # noqa: E731
            for focus in self._focuses.in_order():
                for item in focus.pending():
                    if len(out) >= k:
                        break
                    if not blocked(item) and item not in {q.item_id for q in out}:
                        out.append(self._focus_item(focus, item))
            done = lambda p: self._is_done(ids[p])  # noqa: E731
            if len(out) < k:
                for position, role, score in self._queue.upcoming(done, lambda p: blocked(ids[p])):
                    if ids[position] in {q.item_id for q in out}:
                        continue
                    out.append(self._queue_item(position, role, score))
                    if len(out) >= k:
                        break
            self._claims.hold(q.item_id for q in out)
            for q in out:
                self._served(q.item_id, q.strategy)
        return out

    def next(self) -> QueueItem | None:
        items = self.peek(1)
        return items[0] if items else None

    def release(self, item_ids: Iterable[str]) -> None:
        """Let other sessions be served these items again (this one no longer shows them)."""
        with self._lock:
            self._claims.release(str(i) for i in item_ids)

    def suggest(self, item_id) -> tuple[object, float] | tuple[None, None]:
        """The model's guess for an item and its probability; for an item waiting in a queue
        that carries its own suggestions (a review: the models that never saw its label),
        that queue's, so that every number on its card comes from one computation."""
        with self._lock:
            focus = self._focuses.serving(str(item_id))
            if focus is not None and str(item_id) in focus.suggestions:
                return focus.suggestions[str(item_id)]
        if self._model is None:
            return None, None
        p = self._model.proba[self.pool.position(item_id)]
        best = int(p.argmax())
        return self.classes[best], float(p[best])

    @property
    def suggested_by(self) -> str | None:
        """Which model the suggestions come from, in a few words ("round 3, self-trained")."""
        model = self._model
        if model is None:
            return None
        if model.round == 0:
            return "the model you started from"
        return f"round {model.round}" + (", self-trained" if model.self_trained else "")

    def served_as(self, item_id: str) -> str | None:
        """The role this session last showed the item in (None: never served)."""
        with self._lock:
            roles = self._issued.get(str(item_id))
            return roles[-1] if roles else None

    def blame_text(self, item_id: str) -> str | None:
        """"labeled 3 by ann, 2 days ago, in a1b2c3d" for a labeled item; None otherwise."""
        item_id = str(item_id)
        with self._lock:
            if item_id not in self._labels or self.at is not None:
                return None
            line = self.store.blame_line(item_id)
        if line is None:
            return None
        where = f"in {line['commit']}" if line["commit"] else "not committed yet"
        source = "" if line["source"] in ("human", None) else f" ({line['source']})"
        return (f"labeled {line['label']} by {line['annotator']}{source}, "
                f"{_ago(line['time'])}, {where}")

    def acted_here(self, item_id: str) -> bool:
        """Whether the item's state (its label or skip) was written by this session (the
        widget, or code in the same kernel), not by another notebook or a teammate."""
        item_id = str(item_id)
        with self._lock:
            mine = {e for action in self._actions for e in action}
            if not mine:
                return False
            top = self.store.states([item_id]).get(item_id)
        return top is not None and top["event_id"] in mine

    def role_of(self, item_id: str) -> str | None:
        """The role the item's current label was given in (None: not labeled)."""
        with self._lock:
            return self._roles.get(str(item_id))

    def is_done(self, item_id: str) -> bool:
        """Whether this session has nothing more to ask about the item: it is labeled or
        skipped (an overlap item: labeled by this annotator, or by two annotators already)."""
        with self._lock:
            return self._is_done(item_id)

    def _is_done(self, item_id: str) -> bool:
        if self._focuses.is_pending(item_id):
            return False  # to be shown (a review asks about labeled items again)
        if item_id in self._overlap:
            who = self._annotations.get(item_id, {})
            return self.annotator in who or len(who) >= 2 or item_id in self._skipped
        return item_id in self._labels or item_id in self._skipped

    def _blocked(self, item_id: str, taken: dict) -> bool:
        """Whether another open session is showing the item now (an overlap item may be
        shown to two annotators, but not to two sessions of one)."""
        holders = taken.get(item_id)
        if not holders:
            return False
        if item_id in self._overlap:
            return len(holders) >= 2 or self.annotator in holders
        return True

    def focus(self, item_ids, *, role: str = "review", reasons: dict | None = None,
              suggestions: dict | None = None) -> None:
        """Show these items next, in this role, each once, before the ranked queue: labeling
        one records the role; labeled items are shown again. Queues opened on request compose
        (see `workbench.loop.focus`): this one starts at once, and one opened before keeps its
        items and resumes when this one is done or cleared; a queue of the same role is
        replaced. `suggestions`: item -> (class, probability) to show instead of the model's
        (a review shows what the models that never saw the item's label say)."""
        ids = [str(i) for i in item_ids]
        for item in ids:
            self.pool.position(item)
        with self._lock:
            self._focuses.open(role, ids, reasons=reasons, suggestions=suggestions)
        self._emit("focus_changed")

    @property
    def queues(self) -> list[dict]:
        """The queues items are served from, in serving order, each with the number of items
        left in it: [{"queue": "review", "left": 55}, {"queue": "spot-check", "left": 20},
        {"queue": "diverse_margin", "left": 1600}] (the last: the strategy's ranked queue,
        every item not labeled or skipped)."""
        with self._lock:
            out = [{"queue": f.role, "left": len(f.pending())} for f in self._focuses.in_order()]
            n_done = len(self._labels) + len(self._skipped)
            out.append({"queue": self.strategy_name, "left": max(0, len(self.pool) - n_done)})
        return out

    def clear_queue(self, queue: str | None = None) -> list[str]:
        """Stop serving a queue opened on request ("review", "spot-check", "adjudication",
        ...; None: all of them); returns the names of the queues closed. Nothing is written:
        the items of a cleared queue are served by the strategy's queue as usual."""
        with self._lock:
            closed = self._focuses.clear(queue)
            if queue == REVIEW or (queue is None and closed):
                self._review_table = None
        if closed:
            self._emit("focus_changed")
        return closed

    def adjudicate(self) -> pd.DataFrame:
        """Show the items whose annotators disagree next (an adjudication queue); returns
        them. An adjudication is a label like any other, recorded in the role "adjudication"."""
        table = agreement(self.store.events()).disagreements
        reasons = {row.item_id: "adjudication: " + ", ".join(f"{who} said {label}" for who, label
                                                               in sorted(row.labels.items()))
                   for row in table.itertuples()}
        self.focus(table["item_id"], role=ADJUDICATION, reasons=reasons)
        return table

    def agreement(self):
        """Agreement between this store's annotators (see workbench.loop.agreement)."""
        return agreement(self.store.events())

    def _focus_item(self, focus, item_id: str) -> QueueItem:
        position = self.pool.position(item_id)
        base = self._queue_item(position, focus.role, None)
        reason = focus.reasons.get(item_id) or f"{focus.role}: shown on request"
        fields = {**base.__dict__, "reason": reason}
        if item_id in focus.suggestions:
            fields["suggestion"], fields["confidence"] = focus.suggestions[item_id]
        return QueueItem(**fields)

    def progress(self) -> dict:
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._label_times if now - t < 600][-30:]
            span = recent[-1] - recent[0] if len(recent) >= 2 else 0.0
            # A rate from a few seconds (a script's burst of labels) says nothing about a person.
            rate = (len(recent) - 1) / span * 60 if span >= 10 else 0.0
            n_done = len(self._labels) + len(self._skipped)
            return {"n_labeled": len(self._labels), "n_skipped": len(self._skipped),
                    "n_queued": len(self.pool) - n_done, "pool_size": len(self.pool),
                    "labels_per_minute": round(rate, 1), "queues": self.queues}

    def model_state(self) -> dict:
        with self._lock:
            last = self._history[-1] if self._history else None
            return {"training": self._rounds_running > 0,
                    # the latest round's number; 0 (with started_from) is the bundle's model
                    "rounds": 0 if last is None else int(last["round"]),
                    "started_from": self._start is not None and last is not None and last["round"] == 0,
                    "last_accuracy": None if last is None or pd.isna(last["accuracy"]) else last["accuracy"],
                    # what the widget shows: the figure with its interval, or why not yet
                    "accuracy_headline": None if last is None else accuracy_headline(
                        last["accuracy"], last["n_eval"], last["eval_on"]),
                    "eval_on": None if last is None else last["eval_on"],
                    "last_macro_f1": None if last is None or pd.isna(last.get("macro_f1", np.nan))
                    else last["macro_f1"],
                    "representation": _describe(self.inputs.state()),
                    "last_error": self._last_error}

    # -- acting -----------------------------------------------------------------------------
    def label(self, item, label, *, source: str = "human", query: str | None = None,
              event_id: str | None = None):
        """Record a label for `item` (a QueueItem or an item_id); durable on disk when this
        returns. Labeling an item that already has a label records a relabel, keeping the
        old one in history.

        `query` is the role the item was shown in; it defaults to the role this session last
        served the item in (a QueueItem carries its own), "manual" for an item the queue never
        served, or the current label's role for a relabel. `event_id` names the new event
        (see LabelStore.append)."""
        self._check_open()
        item_id, query = _item_and_role(item, query)
        self.pool.position(item_id)  # raises a clear KeyError for unknown ids
        value = self._check_label(label)
        with self._lock:
            action = self._label_action(item_id)
            role = self._role(item_id, query, action)
            event = self.store.append(item_id, str(value), action=action, source=source,
                                      annotator=self.annotator, query=role, event_id=event_id)
            self._set_label(item_id, value, role)
            self._annotate(item_id, str(value))
            self._label_times.append(time.monotonic())
            self._actions.append((event.event_id,))
            due = self._retrain_due()
        self._emit("labels_changed")
        if due:
            self.retrain(background=True)
        return event

    def skip(self, item=None, *, query: str | None = None, event_id: str | None = None):
        """Put an item aside (it leaves the queue); `undo` brings it back."""
        self._check_open()
        if item is None:
            head = self.next()
            if head is None:
                raise ValueError("nothing to skip: the queue is empty")
            item = head
        item_id, query = _item_and_role(item, query)
        self.pool.position(item_id)
        with self._lock:
            if item_id in self._labels and (query or self.served_as(item_id)) == "review":
                raise ValueError(f"item {item_id!r} is shown for review and has a label, which a "
                                 "skip would take away; session.defer(item) leaves it for later")
            role = self._role(item_id, query, "skip")
            event = self.store.append(item_id, None, action="skip", source="human",
                                      annotator=self.annotator, query=role, event_id=event_id)
            self._set_skipped(item_id)
            self._annotate(item_id, None)
            self._actions.append((event.event_id,))
        self._emit("labels_changed")
        return event

    def label_many(self, labels: Mapping | Iterable, *, skips: Iterable = (),
                   source: str = "human") -> list[str]:
        """Label and skip many items as one action (a grid page): one file on disk, so all of
        it or none of it lands, and one `undo()` takes all of it back. Returns the event ids.

        `labels`: {item_id: label}, or rows (item_id, label[, source[, query[, event_id]]]);
        `skips`: item ids, or rows (item_id[, query[, event_id]])."""
        self._check_open()
        rows = labels.items() if isinstance(labels, Mapping) else labels
        records = []
        with self._lock:
            for row in rows:
                item_id, value, row_source, query, event_id = (*row, None, None, None)[:5]
                item_id, query = _item_and_role(item_id, query)
                self.pool.position(item_id)
                value = self._check_label(value)
                action = self._label_action(item_id)
                records.append({"item_id": item_id, "label": str(value), "action": action,
                                "source": row_source or source, "event_id": event_id,
                                "query": self._role(item_id, query, action), "value": value})
            for row in skips:
                item_id, query, event_id = ((row, None, None) if isinstance(row, str)
                                            else (*row, None, None)[:3])
                item_id, query = _item_and_role(item_id, query)
                self.pool.position(item_id)
                records.append({"item_id": item_id, "label": None, "action": "skip",
                                "source": "human", "event_id": event_id,
                                "query": self._role(item_id, query, "skip"), "value": None})
            seen = [r["item_id"] for r in records]
            if len(set(seen)) != len(seen):
                raise ValueError(f"label_many got an item twice: {sorted(seen)}")
            if not records:
                return []
            frame = pd.DataFrame(records).drop(columns="value").assign(annotator=self.annotator)
            event_ids = self.store.append_many(frame, source=source)
            for record in records:
                if record["action"] == "skip":
                    self._set_skipped(record["item_id"])
                else:
                    self._set_label(record["item_id"], record["value"], record["query"])
                    self._label_times.append(time.monotonic())
            self._actions.append(tuple(event_ids))
            due = self._retrain_due()
        self._emit("labels_changed")
        if due:
            self.retrain(background=True)
        return event_ids

    def undo(self, event_ids: str | Iterable[str] | None = None) -> list[str]:
        """Take back an action; returns the ids of the items it touched ([]: nothing to undo).

        With no argument: this session's latest action that still stands (a label, a skip,
        or a whole `label_many` page); never another notebook's. Events of this session's
        that another handle undid meanwhile (a second notebook, another process, code on the
        store) are passed over, so an undo there moves this one on to the previous action;
        [] says that nothing of this session's is left to undo. With `event_ids`: exactly
        those events, whoever wrote them. All of them are retracted in one write."""
        self._check_open()
        with self._lock:
            if event_ids is None:
                changed = self._sync_locked()  # undos written elsewhere leave the stack first
                targets, undone = self._retract_latest_action()
                if not targets:
                    if changed:
                        self._emit("labels_changed")
                    return []
            else:
                targets = [event_ids] if isinstance(event_ids, str) else list(event_ids)
                undone = self.store.retract(targets, annotator=self.annotator)
            gone = set(targets)
            self._actions = [a for a in self._actions if not gone & set(a)]
            items = list(dict.fromkeys(e.item_id for e in undone))
            for target in targets:  # an item brought back is shown again in its old role
                event = self.store.event(target)
                if event["query"]:
                    self._served(event["item_id"], event["query"])
            self._absorb(items)
            self._focuses.bring_back(items)  # an undone review comes back too
            self._queue.rewind()
        self._emit("labels_changed")
        return items

    def _retract_latest_action(self) -> tuple[list[str], list]:
        """Retract what stands of this session's latest action; returns its event ids and
        the undo events written, ([], []) when the undo stack is empty.

        Another handle may have undone the action in a way this session has not read yet (a
        write after its last look, an undo that a merge or pull brought into this branch):
        the store then refuses the write, and asking the store which of the action's events
        are undone takes those off the stack. A refusal that this does not explain is raised."""
        while self._actions:
            targets = self._actions[-1]
            try:
                return list(targets), self.store.retract(list(targets), annotator=self.annotator)
            except StoreError:
                self._sync_locked()
                items = {self.store.event(e)["item_id"] for e in targets}
                self._forget_undone(set(targets), items)
                if self._actions and self._actions[-1] == targets:
                    raise
        return [], []

    def _forget_undone(self, event_ids: set[str], item_ids: set[str]) -> None:
        """Take those of `event_ids` (events on `item_ids`) that an undo on this branch
        retracted off the undo stack, and drop actions left with none, so that `undo()` moves
        on to the previous action instead of failing on one that is already undone."""
        # The store's history of each item says which undos are in this branch's scope: an
        # undo written on another branch does not retract the event on this one.
        gone = set()
        for item_id in item_ids:
            history = self.store.item_history(item_id)
            gone.update(set(history.loc[history["undone"], "event_id"]) & event_ids)
        if gone:
            self._actions = [left for action in self._actions
                             if (left := tuple(e for e in action if e not in gone))]

    def sync(self) -> list[str]:
        """Pick up what other sessions wrote to the store since the last look; returns the
        ids of items whose state changed. The watcher thread calls this twice a second."""
        with self._lock:
            changed = self._sync_locked()
            self._claims.renew()
        if changed:
            self._emit("labels_changed")
        return changed

    # -- training ---------------------------------------------------------------------------
    def retrain(self, background: bool = False) -> Future | None:
        """Fit a fresh copy of the learner on the current labels, re-rank the queue and
        record a history row. In the background, labeling goes on meanwhile; asking again
        while a round runs adds at most one more round, and only if labels changed.

        Interrupted (the kernel's stop button, Ctrl-C) while it trains in the foreground, it
        raises `RetrainInterrupted`, a KeyboardInterrupt that a notebook shows as one line,
        "retrain interrupted; the previous model is kept": the cell stops, the previous
        model, queue and history stay, and the session goes on as before."""
        from workbench.loop.training import RetrainInterrupted

        self._check_open(writing=False)
        if not background:
            try:
                self._train_round()
            except RetrainInterrupted:
                raise
            except KeyboardInterrupt:  # the learner's traceback says nothing to the user
                raise RetrainInterrupted() from None
            return None
        return self._trainer.request()

    def wait_for_training(self, timeout: float | None = None) -> bool:
        """Block until background training is idle; False if `timeout` seconds passed first."""
        return self._trainer.wait(timeout)

    def _train_round(self) -> int:
        """One round: fit, score, re-rank; the session changes only if all of it succeeds.
        Returns the label version it trained on."""
        from workbench.loop.training import INTERRUPTED

        with self._round_lock:
            with self._lock:
                snapshot, audit = dict(self._labels), self._audit_ids()
                skipped, version = set(self._skipped), self._version
                self._labels_at_train = len(snapshot)
                self._rounds_running += 1
                round_ = self._history[-1]["round"] + 1 if self._history else 1
            try:
                self._emit("retrain_started")
                model, row = self._fit(snapshot, audit, round_)
                queue = self._rank(model, skipped, row)
            except KeyboardInterrupt:  # labels and the last model are untouched here too
                self._round_failed(INTERRUPTED)
                raise
            except Exception as e:  # shown to the user; labels and the last model are untouched
                self._round_failed(f"{type(e).__name__}: {e}")
                raise
            with self._lock:
                self._model = model
                row["round"] = round_
                self._history.append(row)
                self._last_error = None
                self._queue = queue
                self._rounds_running -= 1
                self._rounds_done += 1
                keep = self._closed is None and self.at is None  # replaced or read-only: keep
                if keep:                                         # the working session's state
                    self._save_state()
            if keep:  # the arrays too, outside the lock: labeling goes on while they are written
                self._save_model(model)
            self._emit("retrain_finished")
            return version

    def _start_queue(self):
        """Round 0 is the model the session started from: it suggests and ranks at once."""
        proba = self._prior[0]
        scores = Scores(len(self.pool), len(self.classes), lambda positions: proba[positions])
        with self._lock:
            labeled = list(self._labels)
        model = _Model(self._start.learner, scores, scores, [], labeled, 0, False, self._start)
        self._model = model
        if self._history:  # a reopened store whose saved round could not be rebuilt: no row 0
            return self._rank(model, set(self._skipped))
        positions, truth, eval_on = self._held_out({}, set())
        if positions is None:  # no audit labels yet at the start: only a test split can tell
            metrics, n_eval = metric_scores(truth, self._start.predict(self.test[0])), len(truth)
        else:
            metrics = metric_scores([], [])
            eval_on, n_eval = "not measured here yet: no test split, no audit labels", 0
        self._history.append({
            "round": 0, "n_labels": 0, "accuracy": metrics["accuracy"], "eval_on": eval_on,
            "n_eval": n_eval, "loss": [], "train_accuracy": [], "duration_s": 0.0,
            "time": pd.Timestamp.now(tz="UTC").isoformat(),
            "labels_hash": self._start.info.get("labels_hash"), "macro_f1": metrics["macro_f1"],
            "balanced_accuracy": metrics["balanced_accuracy"], "recall": metrics["recall"]})
        return self._rank(model, set(self._skipped))

    def _retrain_due(self) -> bool:
        return bool(self.retrain_every and not self._trainer.busy
                    and len(self._labels) - self._labels_at_train >= self.retrain_every)

    def _fit(self, labels: dict, audit: set[str], round_: int) -> tuple[_Model, dict]:
        train_ids = [i for i in labels if i not in audit]
        y = [labels[i] for i in train_ids]
        if len(set(map(str, y))) < 2:
            raise ValueError(f"need labels of at least 2 classes to train, have {len(y)} labels of "
                             f"{len(set(map(str, y)))} class(es); label a few more items")
        started = time.perf_counter()
        learner = clone(self.learner)
        # Semi-supervised learners also learn from the rest of the pool; audit items are left
        # out of it too: pseudo-labeling them would grade the model on its own guesses.
        unlabeled = np.flatnonzero(~self.pool.item_ids.isin(list(labels)))
        self.inputs.fit(learner, self.pool.positions(train_ids),
                        np.asarray(y, dtype=object if isinstance(y[0], str) else None), unlabeled,
                        prior=self._prior)
        model = self._model_of(learner, labels, audit, round_)
        predictor = model.predictor
        metrics, eval_on, n_eval = self._evaluate(learner, labels, audit)
        curve = getattr(learner, "history_", None) or []
        row = {"n_labels": len(train_ids), "accuracy": metrics["accuracy"], "eval_on": eval_on,
               "n_eval": n_eval, "loss": [float(c["loss"]) for c in curve],
               "train_accuracy": [float(c["accuracy"]) for c in curve],
               "duration_s": round(time.perf_counter() - started, 3),
               "time": pd.Timestamp.now(tz="UTC").isoformat(),
               # the labels this model learned from (audit ones too): equal to a commit's
               # labels_hash when it was trained on that commit's labels
               "labels_hash": predictor.info["labels_hash"],
               "macro_f1": metrics["macro_f1"], "balanced_accuracy": metrics["balanced_accuracy"],
               "recall": metrics["recall"]}
        return model, row

    def _held_out(self, labels: dict, audit: set[str]) -> tuple[np.ndarray | None, list, str]:
        """What accuracy is measured on, data the strategy did not choose: (the labeled audit
        items' pool positions, or None for the test split; their true labels; in words)."""
        if self.test is not None:
            return None, list(self.test[1]), f"held-out test split ({len(self.test[1])} items)"
        audited = [i for i in audit if i in labels]
        return (self.pool.positions(audited), [str(labels[i]) for i in audited],
                f"random audit sample ({len(audited)} items)")

    def _evaluate(self, learner, labels, audit) -> tuple[dict, str, int]:
        """Accuracy, macro-F1, balanced accuracy and recall per class (workbench.learn.metrics)
        on data the strategy did not choose."""
        positions, truth, what = self._held_out(labels, audit)
        if positions is None:
            X = self.inputs.test_features(self.test[0])
        elif len(truth) < 5:
            return (metric_scores([], []), f"audit sample too small ({len(truth)} of 5 needed)",
                    len(truth))
        else:
            X = self.inputs.features()[positions]
        pred = learner.predict(features_for(learner, X))
        return metric_scores(truth, pred), what, len(truth)

    # -- the queue ----------------------------------------------------------------------------
    def _rank(self, model: _Model, skipped: set[str], row: dict | None = None):
        """Rank what was unlabeled when the model was trained, not now: the ranking is then
        a function of the training round alone (and of its history `row`, default the last
        one, for the audit pace), and a reopened session, which retrains on the same labels,
        rebuilds the very same queue (batch-aware strategies such as diverse_margin would
        otherwise group the candidates differently)."""
        open_ = ~self.pool.item_ids.isin(model.labeled + list(skipped))
        candidates = np.flatnonzero(open_ & ~self._in_reserve)
        audit = self._reserve[open_[self._reserve]]
        rng = self.seed + max(model.round - 1, 0)  # round 0: a model started from
        if len(candidates) == 0:  # every item is labeled, skipped or saved for the audit
            query_positions, scores = np.empty(0, dtype=np.int64), None
        elif getattr(self.strategy, "needs_samples", False):
            X = features_for(model.learner, self.inputs.features()[candidates])
            query = self.strategy(model.learner.predict_proba_samples(X), len(candidates), rng=rng)
            query_positions, scores = query.positions, query.scores
        elif getattr(self.strategy, "needs_features", False):
            # diversity is measured where the learner looks: the representation, if it uses one
            query = self.strategy(model.query_proba[candidates], len(candidates),
                                  features=self.inputs.features()[candidates], batch=self.batch_size,
                                  rng=rng)
            query_positions, scores = query.positions, query.scores
        else:
            query = self.strategy(model.query_proba[candidates], len(candidates), rng=rng)
            query_positions, scores = query.positions, query.scores
        return build_queue(candidates[query_positions], scores, self.strategy_name,
                           audit=audit, audit_every=self._audit_pace(row))

    def _audit_pace(self, row: dict | None = None) -> int | None:
        """Every how many items an audit item is served: `audit_every`, or, left to the
        default, EARLY_AUDIT_EVERY until the accuracy measured on the audit labels (in `row`,
        default the latest history row) is known within +-10 points."""
        if not self._audit_paced or not self.audit_every:
            return self.audit_every
        row = row if row is not None else (self._history[-1] if self._history else None)
        if row is None:
            return EARLY_AUDIT_EVERY
        low, high = accuracy_interval(row["accuracy"], row["n_eval"])
        sure = not np.isnan(low) and (high - low) / 2 <= HEADLINE_HALF_WIDTH
        return self.audit_every if sure else EARLY_AUDIT_EVERY

    def _cold_start_queue(self):
        """No model yet: begin with a diverse batch (one item per k-means cluster), then
        random items, so the first labels cover the data instead of one corner of it. The
        clusters are those of the representation the learner will see once it is learned
        (on 28 x 28 images this lifts the first model from 81% to 92% accuracy at 20 labels),
        of the pool's own features until then. A random strategy starts at random: its
        point is an unbiased sample."""
        free = np.flatnonzero(~self._in_reserve)
        order = np.random.default_rng(self.seed).permutation(free)
        ready = self.inputs.ready()
        # spread again once the representation is learned
        self._cold_start_waits = not ready and self.strategy_name != "random"
        if self.strategy_name != "random":
            features = self.inputs.features() if ready else self.pool.X
            first = free[diverse_positions(features[free], max(self.batch_size, 2 * len(self.classes)),
                                           seed=self.seed)]
            order = np.concatenate([first, order[~np.isin(order, first)]])
        return build_queue(order, None, COLD_START, audit=self._reserve,
                           audit_every=self._audit_pace())

    def _respread_cold_start(self) -> None:
        """Called under the lock before serving: the cold start was spread over the pool's
        own features while the representation was learned; once it is ready, and while no
        model is, spread it over the representation (items already shown keep their role)."""
        if self._model is None and self._cold_start_waits and self.inputs.ready():
            self._queue = self._cold_start_queue()

    def _queue_item(self, position, role, score) -> QueueItem:
        item_id = self.pool.item_ids[position]
        model = self._model
        suggestion = confidence = None
        if model is not None:
            p = model.proba[position]
            best = int(p.argmax())
            suggestion, confidence = self.classes[best], float(p[best])
        return QueueItem(item_id=item_id, position=int(position), strategy=role,
                         score=None if score is None else float(score), suggestion=suggestion,
                         confidence=confidence, reason=self._reason(role, score, position))

    def _reason(self, role: str, score, position: int) -> str:
        """Why the item is shown, naming the model whose numbers it quotes: the suggestion
        comes from the final (possibly self-trained) model, the ranking from the model that
        knows only people's labels, so each number says which one it is."""
        if role == COLD_START and self.strategy_name == "random":
            return "cold start: a random pick, made before any model was trained"
        if role == COLD_START:
            return "cold start: a diverse first pick, made before any model was trained"
        if role == AUDIT:
            return "audit: a random item, kept out of training to measure accuracy honestly"
        model = self._model
        if model is None or score is None:
            return role
        p = model.query_proba[position]
        top = np.argsort(p)[::-1][:2]
        names = self.class_names
        guess = f"{names[int(top[0])]} ({p[top[0]]:.0%}) and {names[int(top[1])]} ({p[top[1]]:.0%})"
        who = "the model you started from" if model.round == 0 else f"the round-{model.round} model" + (
            ", trained on your labels alone," if model.self_trained else "")
        if role in ("margin", "diverse_margin"):
            return f"margin {-score:.2f}: {who} hesitates between {guess}"
        if role == "least_confidence":
            return f"least confidence: {who} gives its top guess only {p[top[0]]:.0%} ({guess})"
        if role == "entropy":
            return f"entropy {score:.2f} nats: {who} spreads its probability ({guess})"
        if role == "bald":
            return f"BALD {score:.3f}: dropout samples of {who} disagree ({guess})"
        if role == "random":
            return f"random pick ({who} says {guess})"
        return f"{role} score {score:.3g} ({who} says {guess})"

    def _audit_ids(self) -> set[str]:
        if self.test is not None or not self.audit_every:
            return set()
        return set(self._audit)

    # -- label state --------------------------------------------------------------------------
    def _role(self, item_id: str, query: str | None, action: str) -> str:
        """The role to record: the one the item was shown in, checked against what this
        session served (an audit label must come from an audit slot)."""
        issued = self._issued.get(item_id, [])
        current = self._roles.get(item_id) if action == "relabel" else None
        if query is None:
            return current or (issued[-1] if issued else MANUAL)
        if query in issued or query == current or query == MANUAL:
            return query
        if issued:
            raise ValueError(f"item {item_id!r} was served as {', '.join(map(repr, issued))}, not as "
                             f"{query!r}: a label records the role its item was shown in")
        raise ValueError(f"item {item_id!r} was never served by the queue, so it cannot be recorded "
                         f"as {query!r}; leave query=None to record it as {MANUAL!r}")

    def _label_action(self, item_id: str) -> str:
        """"relabel" for an item that has a label; an overlap item's first label by this
        annotator is a "label" of its own, even when a teammate labeled it before."""
        if item_id in self._overlap:
            return "relabel" if self.annotator in self._annotations.get(item_id, {}) else "label"
        return "relabel" if item_id in self._labels else "label"

    def _annotate(self, item_id: str, label: str | None, annotator: str | None = None) -> None:
        self._focuses.mark_done(item_id)
        if item_id not in self._overlap:
            return
        who = self._annotations.setdefault(item_id, {})
        if label is None:
            who.pop(annotator or self.annotator, None)
        else:
            who[annotator or self.annotator] = label

    def _served(self, item_id: str, role: str) -> None:
        roles = self._issued.setdefault(item_id, [])
        if role in roles:
            roles.remove(role)
        roles.append(role)  # the latest last: a label without a role is recorded in this one

    def _set_label(self, item_id: str, value, role: str) -> None:
        self._labels[item_id] = value
        self._roles[item_id] = role
        if role == AUDIT:
            self._audit.add(item_id)
        else:
            self._audit.discard(item_id)
        self._skipped.discard(item_id)
        self._claims.forget([item_id])  # durable now: others see it labeled
        self._version += 1

    def _set_skipped(self, item_id: str) -> None:
        self._labels.pop(item_id, None)
        self._roles.pop(item_id, None)
        self._audit.discard(item_id)
        self._skipped.add(item_id)
        self._claims.forget([item_id])
        self._version += 1

    def _load_labels(self) -> None:
        self._labels, self._roles, self._audit, self._skipped = {}, {}, set(), set()
        current = (self.store.current_labels() if self.at is None
                   else self.store.current_labels_at(self.at))
        for item_id, label, query in zip(current.index, current["label"], current["query"]):
            if item_id in self.pool:
                self._labels[item_id] = self._check_label(label)
                self._roles[item_id] = query
                if query == AUDIT:
                    self._audit.add(item_id)
        if self.at is None:
            self._skipped = {i for i in self.store.skipped() if i in self.pool}

    def _absorb(self, item_ids: list[str]) -> list[str]:
        """Re-read these items' state from the store; returns those whose state changed."""
        states = self.store.states(item_ids)
        changed = []
        for item_id in item_ids:
            if item_id not in self.pool:
                continue
            top = states.get(item_id)
            action = None if top is None else top["action"]
            value, role = None, None
            if action in ("label", "relabel"):
                try:
                    value = self._check_label(top["label"])
                except ValueError:
                    log.warning("label store %s holds label %r for item %r, which is not one of "
                                "this session's classes; ignored", self.store.path, top["label"],
                                item_id)
                    continue
                role = top["query"]
            now = (value, role, action == "skip")
            if now == (self._labels.get(item_id), self._roles.get(item_id), item_id in self._skipped):
                continue  # already known (this session's own events come back this way too)
            if value is not None:
                self._set_label(item_id, value, role)
            elif action == "skip":
                self._set_skipped(item_id)
            else:  # never labeled, all undone, or removed (a restore, a merge)
                self._labels.pop(item_id, None)
                self._roles.pop(item_id, None)
                self._audit.discard(item_id)
                self._skipped.discard(item_id)
                self._version += 1
            changed.append(item_id)
        return changed

    def _reannotate(self, items: set[str]) -> None:
        """Each annotator's label of these overlap items, read again from the log."""
        mine = annotations(self.store.events_of(items))
        for item in items:
            self._annotations[item] = {}
        for item, who, label in mine.itertuples(index=False):
            self._annotations[item][who] = label

    def _sync_locked(self) -> list[str]:
        if self.at is not None:  # a commit's labels do not change
            return []
        new = self.store.sync()
        if not new:
            return []
        # Another handle's undo of this session's events: they leave its undo stack. (This
        # session's own undos come back here too, already off the stack.)
        undos = {e["target"]: e["item_id"] for e in new if e["action"] == "undo"}
        if undos and self._actions:
            mine = {e for action in self._actions for e in action}
            undone = {target: item for target, item in undos.items() if target in mine}
            if undone:
                self._forget_undone(set(undone), set(undone.values()))
        touched = [e for e in new if e["item_id"] in self._overlap]
        if touched:
            self._reannotate({e["item_id"] for e in touched})
        changed = self._absorb(list(dict.fromkeys(e["item_id"] for e in new if e["item_id"])))
        if any(not (i in self._labels or i in self._skipped) for i in changed):
            self._queue.rewind()  # an item came back (someone's undo): it is pending again
        return changed

    # -- persistence -------------------------------------------------------------------------
    @property
    def _state_name(self) -> str:
        return f"_session-{_safe(self.annotator)}.json"

    def _save_state(self) -> None:
        from workbench.loop.export import started_from

        self.store.save_sidecar(self._state_name, {
            "history": self._history, "trained_on": self._model.trained_on,
            "labeled_at_train": self._model.labeled, "strategy": self.strategy_name,
            "started_from": started_from(self)})

    def _restore(self) -> None:
        """Bring back the model the user last saw, so the queue comes back in the same order:
        from its arrays kept in the store (see `workbench.loop.saved_model`), at once; when
        they cannot rebuild it (another learner, one without an array form, an older store)
        or the representation it reads is still being learned, it is rebuilt in the
        background (`_rebuild_round`: from the arrays, or trained again on the labels it
        was trained on; training is seeded) and the constructor never waits for it."""
        state = self.store.load_sidecar(self._state_name)
        if state is None:
            return
        self._history = state.get("history", [])
        parent = state.get("started_from")
        if parent and self._start is None:
            warnings.warn(f"this store's model was trained starting from the bundle "
                          f"{parent.get('bundle')!r}; without start_from= it is rebuilt from the "
                          "labels alone, a different model", stacklevel=3)
        known = state.get("labeled_at_train", state.get("trained_on", []))
        trained = {i: self._labels[i] for i in known if i in self._labels}
        if len(set(map(str, trained.values()))) >= 2:
            audit, round_ = self._audit_ids(), self._history[-1]["round"] if self._history else 0
            self._labels_at_train = len(trained)
            model = self._saved_model(trained, audit, round_) if self.inputs.ready() else None
            if model is None:
                self._rebuild = (trained, audit, round_)  # started at the end of __init__
                return
            self._model = model
            self._queue = self._rank(model, set(self._skipped))

    # -- helpers --------------------------------------------------------------------------------
    def _check_label(self, label):
        key = str(label.item() if hasattr(label, "item") else label)
        if key not in self._by_name:
            raise ValueError(f"label {label!r} is not one of the classes {self.class_names}")
        return self._by_name[key]

    def subscribe(self, callback):
        """Call `callback(event)` on "labels_changed", "queue_changed" (a review, an
        adjudication, a focus), "retrain_started", "retrain_finished", "retrain_failed" and
        "representation_progress" (possibly from a background thread). A callback that raises is
        logged and never undoes or hides the action that notified it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _emit(self, event: str) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # the action already happened (a label is durable): report only
                log.exception("a workbench subscriber failed on %r", event)

    def export(self, path, *, name: str | None = None, as_zip: bool | None = None,
               overwrite: bool = False):
        """Write the model as a bundle (`workbench.learn.bundle`): a folder, or one zip file
        when `path` ends in ".zip" or `as_zip=True`, holding config.json, model.safetensors,
        model.onnx, a model card and a manifest. Retrains first if labels came since the last
        round, and names the label commit the model learned from (committing the labels if
        the head is not it)."""
        from workbench.loop.export import export_session

        return export_session(self, path, name=name, as_zip=as_zip, overwrite=overwrite)

    def widget(self, **kw):
        from workbench.ui.label_widget import LabelWidget

        return LabelWidget(self, **kw)

    def map(self, color: str = "label", **kw):
        """A 2-D map of the items (an Altair chart with a brush), coloured by label,
        prediction, uncertainty or suspicion; `queue_from(chart)` labels what you select.
        See `workbench.ui.data_map`."""
        from workbench.ui.data_map import data_map

        return data_map(self, color=color, **kw)

    def queue_from(self, selection, *, role: str = "map") -> list[str]:
        """Show next the items of a selection: the brushed region of `map()`'s chart, its
        selection value, or a list of item ids; returns their ids."""
        from workbench.ui.data_map import queue_from

        return queue_from(self, selection, role=role)

    def history_view(self, **kw):
        """The store's commit log and what each commit changed, with the items (a widget)."""
        from workbench.ui.history_view import HistoryView

        return HistoryView(self, **kw)

    def close(self, *, reason: str = "closed", wait: bool = True) -> None:
        """Stop the watcher and the training thread (after its round, if `wait`) and drop our
        claims; the session takes no more actions (its labels stay in the store, of course)."""
        if self._closed is None:
            self._closed = reason
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self._trainer.close(wait=wait)
        with self._lock:
            self._claims.close()

    def _check_open(self, *, writing: bool = True) -> None:
        if self._closed is not None:
            raise RuntimeError(f"this Session is {self._closed}: it takes no more actions; "
                               "open a new Session on the store (the labels are all there)")
        if writing and self.at is not None:
            raise RuntimeError(f"this Session is read-only: it shows the labels as of commit "
                               f"{self.at[:7]}; open one without at= to label")

    def __repr__(self) -> str:
        p = self.progress()
        return (f"Session({self.pool.name!r}, {p['n_labeled']}/{p['pool_size']} labeled, "
                f"strategy={self.strategy_name}, learner={type(self.learner).__name__}, "
                f"store={str(self.store.path)!r})")

    # -- a round's model, kept and rebuilt (see workbench.loop.saved_model) --------------------------
    def _model_of(self, learner, labels: dict, audit: set[str], round_: int) -> _Model:
        """A fitted (or rebuilt) learner with what the session reads from it: its
        probabilities over the pool (computed on demand) and those the queue ranks by."""
        train_ids = [i for i in labels if i not in audit]
        unlabeled = np.flatnonzero(~self.pool.item_ids.isin(list(labels)))
        features = self.inputs.features()
        rep = self.inputs.representation()
        predictor = Model(learner, self.classes, self.signature,
                          encoder=None if rep is None else rep.encoder,
                          info={"round": round_, "n_labels": len(train_ids),
                                "labels_hash": labels_hash(list(labels),
                                                           [str(v) for v in labels.values()])})

        def scores(predict) -> Scores:  # computed for the items that are asked about, only
            return Scores(len(self.pool), len(self.classes), lambda positions: predictor.align(
                predict(features_for(learner, features[positions]))))

        proba = scores(learner.predict_proba)
        # Suggestions and accuracy come from the final model; uncertainty is ranked by what
        # knows only people's labels: label spreading seeded with them alone, or the
        # networks trained before self-training.
        self_trained = bool(getattr(learner, "n_pseudo_labels_", 0)) and hasattr(learner, "query_proba")
        spread = getattr(learner, "transductive_proba_", None)
        query_proba = scores(learner.query_proba) if self_trained or spread is not None else proba
        if spread is not None:
            query_proba.fill(unlabeled, predictor.align(spread))
        return _Model(learner, proba, query_proba, train_ids, list(labels), round_, self_trained,
                      predictor)

    def _save_model(self, model: _Model) -> None:
        """Keep the round's learner as arrays in the store, so reopening it trains nothing."""
        from workbench.loop import saved_model

        saved_model.save(self.store, saved_model.file_name(self._state_name), model.learner,
                         round_=model.round, labels_hash=model.predictor.info["labels_hash"])

    def _saved_model(self, labels: dict, audit: set[str], round_: int) -> _Model | None:
        """Round `round_`'s model rebuilt from the arrays kept in the store, if they are
        that round's on these labels for this session's learner; None otherwise."""
        from workbench.loop import saved_model

        learner = saved_model.load(self.store, saved_model.file_name(self._state_name),
                                   self.learner, round_=round_,
                                   labels_hash=labels_hash(list(labels),
                                                           [str(v) for v in labels.values()]))
        return None if learner is None else self._model_of(learner, labels, audit, round_)

    def _rebuild_round(self) -> None:
        """In the background, the model `_restore` could not bring back at once: from its
        arrays, or trained again on the labels it was trained on. Meanwhile the session
        serves its cold start (or the model it started from); a round trained here first (a
        foreground retrain) makes it unnecessary."""
        labels, audit, round_ = self._rebuild
        with self._round_lock:
            with self._lock:
                if self._rounds_done or self._closed is not None:
                    return
                self._rounds_running += 1
            try:
                self._emit("retrain_started")
                model = self._saved_model(labels, audit, round_)
                trained = model is None
                if trained:
                    model, _ = self._fit(labels, audit, round_)
                with self._lock:
                    skipped = set(self._skipped)
                queue = self._rank(model, skipped)
            except KeyboardInterrupt:
                message = (f"rebuilding the round-{round_} model was interrupted; the session "
                           "goes on without it (retrain() trains a new one)")
                log.warning(message)
                self._round_failed(message)
                return
            except Exception as e:
                log.warning("the round-%d model could not be rebuilt: %s: %s", round_,
                            type(e).__name__, e)
                self._round_failed(f"{type(e).__name__}: {e}")
                return
            with self._lock:
                self._model, self._queue = model, queue
                self._last_error = None
                self._rounds_running -= 1
                keep = trained and self._closed is None and self.at is None
            if keep:
                self._save_model(model)
            self._emit("retrain_finished")

    def _round_failed(self, message: str) -> None:
        """A round that failed or was interrupted: the previous model, queue and history stay."""
        with self._lock:
            self._rounds_running -= 1
            self._last_error = message
        self._emit("retrain_failed")


def _ago(when) -> str:
    """A time as people say it: "just now", "5 minutes ago", "2 days ago"."""
    seconds = max(0.0, (pd.Timestamp.now(tz="UTC") - pd.Timestamp(when)).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def _item_and_role(item, query: str | None) -> tuple[str, str | None]:
    """An item id and the role it was shown in, from a QueueItem or an id."""
    if isinstance(item, QueueItem):
        return item.item_id, query or item.strategy
    return str(item), query


def _check_strategy_fits(strategy, name: str, learner) -> None:
    if getattr(strategy, "needs_samples", False) and not hasattr(learner, "predict_proba_samples"):
        raise ValueError(f"strategy {name!r} needs a learner with MC-dropout samples "
                         f"(predict_proba_samples), e.g. TorchClassifier; got "
                         f"{type(learner).__name__}")


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


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _describe(state: dict | None) -> str | None:
    """The representation's state in a few words, for the widget's status line (None once
    it is ready: then there is nothing to wait for)."""
    if state is None or state["status"] == "ready":
        return None
    if state["status"] == "building":
        return f"learning the pool's representation: {state['progress']:.0%} ({state['message']})"
    return f"the pool's representation failed: {state['message']}"
