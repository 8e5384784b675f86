"""Training rounds: fit a fresh learner on the labels, score it on held-out data, rank the
queue on it, and keep one history row per round.

A round changes the session only if all of it succeeds: a failure or an interrupt leaves the
labels, the previous model, its queue and the history as they were. Rounds run one at a time,
in the foreground or on the session's trainer thread (`workbench.loop.training`), while the
person goes on labeling.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from workbench.data.tasks import BOXES, MULTI_LABEL, PARTS, SPANS, indicator
from workbench.learn.learners import features_for
from workbench.learn.metrics import accuracy_headline, accuracy_interval
from workbench.learn.model import Model
from workbench.loop import box_rounds, span_rounds
from workbench.loop.held_out import evaluate
from workbench.loop.inputs import Scores
from workbench.loop.training import INTERRUPTED, RetrainInterrupted, Trainer
from workbench.store.views import labels_hash

WARM_SUGGESTIONS = 1000  # queue entries whose suggestions a round computes before it is installed
HISTORY_COLUMNS = ["round", "n_labels", "accuracy", "eval_on", "n_eval", "loss",
                   "train_accuracy", "duration_s", "time", "labels_hash",
                   "macro_f1", "balanced_accuracy", "recall", "micro_f1", "hamming_loss",
                   "span_f1", "span_precision", "span_recall", "box_map50", "box_precision", "box_recall"]


@dataclass
class RoundModel:
    """What one finished training round produced."""

    learner: object
    proba: Scores              # (N, C) over the pool, columns in session.classes order, on demand
    query_proba: Scores        # what the strategy ranks by (the labels-only model's, when it differs)
    trained_on: list[str]      # item ids, so a reopened session can rebuild the same model
    labeled: list[str]         # every item labeled then (audit too): what the ranking left out
    round: int
    self_trained: bool
    predictor: Model           # the learner with what it reads: items in, probabilities out


# A task scored by something other than accuracy: its figure, and the two beside it
SCORED_BY = {SPANS: ("span F1", "span_f1", "span_precision", "span_recall"),
             BOXES: ("mAP@0.5", "box_map50", "box_precision", "box_recall")}


def headline(row: dict, task: str) -> str:
    """What the widget says of a round's figure: the accuracy with its interval, or a spans
    session's span F1 and a boxes session's mAP@0.5 with their precision and recall."""
    if task not in SCORED_BY:
        return accuracy_headline(row["accuracy"], row["n_eval"], row["eval_on"])
    name, score, precision, recall = SCORED_BY[task]
    if pd.isna(row.get(score, np.nan)):
        return f"{name} not measured yet ({row['eval_on']})"
    return (f"{name} {row[score]:.2f} (precision {row[precision]:.2f}, recall {row[recall]:.2f}) "
            f"on {row['eval_on']}")


class Rounds:
    """The session's model, its history and its training rounds."""

    def __init__(self, session, start):
        self.session = session
        self.start = start          # a model the session started from (loop/start_from.py), or None
        # what every round learns of the start model and round 0 is: start_from.ClassStart, or a
        # spans or boxes session's start_parts.PartsStart
        self.prior = None
        self.model: RoundModel | None = None
        self.rows: list[dict] = []  # the history, one dict per round
        self.running = 0
        self.done = 0  # rounds trained here: a model rebuilt in the background yields to them
        self.last_error: str | None = None
        self.labels_at_train = 0
        self.lock = threading.Lock()  # one training round at a time, foreground or not
        self.trainer = Trainer(self.train_round, lambda: session.item_state.version)

    # -- reading ------------------------------------------------------------------------------
    def history(self) -> pd.DataFrame:
        """One row per training round: n_labels, accuracy with its Wilson 95% interval
        (accuracy_low, accuracy_high) on n_eval items of eval_on, macro-F1, balanced accuracy,
        recall per class, the loss curve, duration and the labels' hash."""
        with self.session.lock:
            frame = pd.DataFrame(self.rows, columns=HISTORY_COLUMNS)
        bounds = [accuracy_interval(a, n) for a, n in zip(frame["accuracy"], frame["n_eval"])]
        at = frame.columns.get_loc("n_eval") + 1
        frame.insert(at, "accuracy_low", pd.Series([b[0] for b in bounds], dtype=float))
        frame.insert(at + 1, "accuracy_high", pd.Series([b[1] for b in bounds], dtype=float))
        return frame

    def pool_proba(self, positions, *, labels_only: bool = False) -> np.ndarray | None:
        """Class probabilities of the pool items at `positions` from the latest model, None
        before the first one: the final model's (suggestions), or with `labels_only` those of
        the model trained on people's labels alone (the one the queue ranks by)."""
        model = self.model  # one read: a round may replace it meanwhile
        if model is None:
            return None
        return np.asarray((model.query_proba if labels_only else model.proba)[positions])

    def suggested_by(self) -> str | None:
        """Which model the suggestions come from, in a few words ("round 3, self-trained")."""
        model = self.model
        if model is None:
            return None
        if model.round == 0:
            return "the model you started from"
        return f"round {model.round}" + (", self-trained" if model.self_trained else "")

    def model_state(self) -> dict:
        """What the widget shows of the model: training or not, the round, the accuracy
        headline (with its interval, or why not yet), the representation, the last error."""
        session = self.session
        with session.lock:
            last = self.rows[-1] if self.rows else None
            return {"training": self.running > 0,
                    # the latest round's number; 0 (with started_from) is the bundle's model
                    "rounds": 0 if last is None else int(last["round"]),
                    "started_from": self.start is not None and last is not None and last["round"] == 0,
                    "last_accuracy": None if last is None or pd.isna(last["accuracy"]) else last["accuracy"],
                    # what the widget shows: the figure with its interval, or why not yet
                    "accuracy_headline": None if last is None else headline(last, session.task),
                    "eval_on": None if last is None else last["eval_on"],
                    "last_macro_f1": None if last is None or pd.isna(last.get("macro_f1", np.nan))
                    else last["macro_f1"],
                    "representation": _describe(session.inputs.state()),
                    "last_error": self.last_error}

    # -- training -----------------------------------------------------------------------------
    def retrain(self, background: bool = False) -> Future | None:
        """Fit a fresh copy of the learner on the current labels, re-rank the queue and
        record a history row. In the background, labeling goes on meanwhile; asking again
        while a round runs adds at most one more round, and only if labels changed.

        Interrupted (the kernel's stop button, Ctrl-C) while it trains in the foreground, it
        raises `RetrainInterrupted`, a KeyboardInterrupt that a notebook shows as one line,
        "retrain interrupted; the previous model is kept": the cell stops, the previous
        model, queue and history stay, and the session goes on as before."""
        self.session.check_open(writing=False)
        if not background:
            try:
                self.train_round()
            except RetrainInterrupted:
                raise
            except KeyboardInterrupt:  # the learner's traceback says nothing to the user
                raise RetrainInterrupted() from None
            return None
        return self.trainer.request()

    def wait_for_training(self, timeout: float | None = None) -> bool:
        """Block until background training is idle; False if `timeout` seconds passed first."""
        return self.trainer.wait(timeout)

    def retrain_due(self) -> bool:
        every = self.session.retrain_every
        return bool(every and not self.trainer.busy
                    and len(self.session.item_state.labels) - self.labels_at_train >= every)

    def train_round(self) -> int:
        """One round: fit, score, re-rank; the session changes only if all of it succeeds.
        Returns the label version it trained on."""
        session, state = self.session, self.session.item_state
        with self.lock:
            with session.lock:
                snapshot, audit = dict(state.labels), state.audit_ids()
                skipped, version = set(state.skipped), state.version
                self.labels_at_train = len(snapshot)
                self.running += 1
                round_ = self.rows[-1]["round"] + 1 if self.rows else 1
            try:
                session.emit("retrain_started")
                model, row = self.fit(snapshot, audit, round_)
                queue = session.ranker.rank(model, skipped, row)
                # The suggestions of the items served next, computed here in the background:
                # otherwise the first next() on each block of the new queue predicts 1,024 rows
                model.proba.warm(queue.positions[:WARM_SUGGESTIONS])
            except KeyboardInterrupt:  # labels and the last model are untouched here too
                self.failed(INTERRUPTED)
                raise
            except Exception as e:  # shown to the user; labels and the last model are untouched
                self.failed(f"{type(e).__name__}: {e}")
                raise
            with session.lock:
                self.model = model
                row["round"] = round_
                self.rows.append(row)
                self.last_error = None
                session.serving.queue = queue
                self.running -= 1
                self.done += 1
                keep = session.closed is None and session.at is None  # replaced or read-only: keep
            # The working session's state, outside the session's lock: its two fsyncs took up
            # to tens of milliseconds on a busy disk, and next() waited for them. The history
            # and the model change only under `self.lock`, which this round still holds.
            if keep:
                session.resume.save_state()
                session.resume.save_model(model)  # the arrays too: labeling goes on meanwhile
            session.emit("retrain_finished")
            return version

    def failed(self, message: str) -> None:
        """A round that failed or was interrupted: the previous model, queue and history stay."""
        with self.session.lock:
            self.running -= 1
            self.last_error = message
        self.session.emit("retrain_failed")

    def fit(self, labels: dict, audit: set[str], round_: int) -> tuple[RoundModel, dict]:
        """A fresh learner fitted on the labels (less the audit ones), and its history row."""
        session = self.session
        if session.task in PARTS:  # a tagger or a detector: loop/span_rounds.py, box_rounds.py
            tagger, uncertainty, predictor, train_ids, row = (span_rounds if session.task == SPANS else
                                                              box_rounds).fit(session, labels, audit, round_,
                                                                              prior=self.prior)
            return RoundModel(tagger, uncertainty, uncertainty, train_ids, list(labels), round_, False,
                              predictor), row
        train_ids = [i for i in labels if i not in audit]
        y = [labels[i] for i in train_ids]
        if session.task == MULTI_LABEL:
            if len(set(map(str, y))) < 2:
                raise ValueError(f"need labels of at least 2 different class sets to train, have "
                                 f"{len(y)} labels; label a few more items")
            targets = indicator(y, session.class_names)  # items x classes, 0/1
        elif len(set(map(str, y))) < 2:
            raise ValueError(f"need labels of at least 2 classes to train, have {len(y)} labels of "
                             f"{len(set(map(str, y)))} class(es); label a few more items")
        else:
            targets = np.asarray(y, dtype=object if isinstance(y[0], str) else None)
        started = time.perf_counter()
        learner = clone(session.learner)
        # Semi-supervised learners also learn from the rest of the pool; audit items are left
        # out of it too: pseudo-labeling them would grade the model on its own guesses.
        unlabeled = np.flatnonzero(~session.pool.item_ids.isin(list(labels)))
        session.inputs.fit(learner, session.pool.positions(train_ids), targets, unlabeled,
                           prior=None if self.prior is None else self.prior.pair)
        model = self.model_of(learner, labels, audit, round_)
        predictor = model.predictor
        metrics, eval_on, n_eval = evaluate(session, learner, labels, audit)
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
               "recall": metrics["recall"], "micro_f1": metrics.get("micro_f1", np.nan),
               "hamming_loss": metrics.get("hamming_loss", np.nan)}
        return model, row

    def model_of(self, learner, labels: dict, audit: set[str], round_: int) -> RoundModel:
        """A fitted (or rebuilt) learner with what the session reads from it: its
        probabilities over the pool (computed on demand) and those the queue ranks by."""
        session = self.session
        pool, classes = session.pool, session.classes
        train_ids = [i for i in labels if i not in audit]
        unlabeled = np.flatnonzero(~pool.item_ids.isin(list(labels)))
        features = session.inputs.features()
        rep = session.inputs.representation()
        predictor = Model(learner, classes, session.signature, task=session.task,
                          # a learner that reads the items (learner="finetune") holds its encoder
                          encoder=None if rep is None or session.inputs.reads_items else rep.encoder,
                          info={"round": round_, "n_labels": len(train_ids),
                                "labels_hash": labels_hash(list(labels),
                                                           [str(v) for v in labels.values()])})

        def scores(predict) -> Scores:  # computed for the items that are asked about, only
            return Scores(len(pool), len(classes), lambda positions: predictor.align(
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
        return RoundModel(learner, proba, query_proba, train_ids, list(labels), round_, self_trained,
                          predictor)

    def start_queue(self):
        """Round 0 is the model the session started from: it suggests and ranks at once."""
        session = self.session
        with session.lock:
            labeled = list(session.item_state.labels)
        skipped = set(session.item_state.skipped)
        # a reopened store whose saved round could not be rebuilt has row 0: not scored again
        self.model, row = self.prior.round_zero(labeled, scored=not self.rows)
        if row is not None:
            self.rows.append({**row, "round": 0})
        return session.ranker.rank(self.model, skipped)


def _describe(state: dict | None) -> str | None:
    """The representation's state in a few words, for the widget's status line (None once
    it is ready: then there is nothing to wait for, unless it was built without its graph)."""
    if state is not None and state["status"] == "ready" and state.get("has_graph") is False:
        return ("the pool's representation has no neighbour graph (not enough memory was free to "
                "build one): rounds learn without label spreading")
    if state is None or state["status"] == "ready":
        return None
    if state["status"] == "building" and state["message"].startswith("reading"):
        return state["message"]  # a cache file of a large pool, read in the background
    if state["status"] == "building":
        return f"learning the pool's representation: {state['progress']:.0%} ({state['message']})"
    return f"the pool's representation failed: {state['message']}"
