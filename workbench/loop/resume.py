"""Resuming where the person stopped: the session's history and its last model, kept in the
store beside the labels, and brought back when the store is opened again.

The history and what the last round trained on live in `_session-<annotator>.json`; the
round's learner as arrays beside it (`workbench.loop.saved_model`). Opening never blocks on
training: a model that the arrays cannot bring back at once is rebuilt in the background.
"""

from __future__ import annotations

import logging
import warnings

from workbench.data.tasks import PARTS
from workbench.loop import saved_model
from workbench.store.views import labels_hash

log = logging.getLogger(__name__)


class Resume:
    """Saving and restoring one session's rounds through its store."""

    def __init__(self, session):
        self.session = session
        self.rebuild: tuple | None = None  # (labels, audit, round) `restore` could not rebuild at once

    @property
    def state_name(self) -> str:
        return f"_session-{_safe(self.session.annotator)}.json"

    def save_state(self) -> None:
        """The history and what the latest round trained on (called under the session's lock)."""
        from workbench.loop.export import started_from

        rounds = self.session.rounds
        self.session.store.save_sidecar(self.state_name, {
            "history": rounds.rows, "trained_on": rounds.model.trained_on,
            "labeled_at_train": rounds.model.labeled, "strategy": self.session.strategy_name,
            "started_from": started_from(self.session)})

    def restore(self) -> None:
        """Bring back the model the user last saw, so the queue comes back in the same order:
        from its arrays kept in the store (see `workbench.loop.saved_model`), at once; when
        they cannot rebuild it (another learner, one without an array form, an older store)
        or the representation it reads is still being learned, it is rebuilt in the
        background (`rebuild_round`: from the arrays, or trained again on the labels it
        was trained on; training is seeded) and the constructor never waits for it."""
        session, rounds = self.session, self.session.rounds
        state = session.store.load_sidecar(self.state_name)
        if state is None:
            return
        rounds.rows = state.get("history", [])
        parent = state.get("started_from")
        if parent and rounds.start is None:
            warnings.warn(f"this store's model was trained starting from the bundle "
                          f"{parent.get('bundle')!r}; without start_from= it is rebuilt from the "
                          "labels alone, a different model", stacklevel=3)
        elif parent and parent.get("labels_hash") != rounds.start.info.get("labels_hash"):
            warnings.warn(f"this store's model was trained starting from the bundle "
                          f"{parent.get('bundle')!r}; start_from= names another model (labels_hash "
                          f"{rounds.start.info.get('labels_hash')!r}, not {parent.get('labels_hash')!r}), "
                          "so it is rebuilt starting from that one, a different model", stacklevel=3)
        labels = session.item_state.labels
        known = state.get("labeled_at_train", state.get("trained_on", []))
        trained = {i: labels[i] for i in known if i in labels}
        # a round of classes needs two of them; a tagger's or a detector's, one labeled item
        if len(set(map(str, trained.values()))) >= (1 if session.task in PARTS else 2):
            audit = session.item_state.audit_ids()
            round_ = rounds.rows[-1]["round"] if rounds.rows else 0
            rounds.labels_at_train = len(trained)
            model = self.saved_model(trained, audit, round_) if session.inputs.ready() else None
            if model is None:
                self.rebuild = (trained, audit, round_)  # started at the end of Session.__init__
                return
            rounds.model = model
            session.serving.queue = session.ranker.rank(model, set(session.item_state.skipped))

    def save_model(self, model) -> None:
        """Keep the round's learner as arrays in the store, so reopening it trains nothing."""
        saved_model.save(self.session.store, saved_model.file_name(self.state_name), model.learner,
                         round_=model.round, labels_hash=model.predictor.info["labels_hash"])

    def saved_model(self, labels: dict, audit: set[str], round_: int):
        """Round `round_`'s model rebuilt from the arrays kept in the store, if they are
        that round's on these labels for this session's learner; None otherwise."""
        session = self.session
        learner = saved_model.load(session.store, saved_model.file_name(self.state_name),
                                   session.learner, round_=round_,
                                   labels_hash=labels_hash(list(labels),
                                                           [str(v) for v in labels.values()]))
        return None if learner is None else session.rounds.model_of(learner, labels, audit, round_)

    def rebuild_round(self) -> None:
        """In the background, the model `restore` could not bring back at once: from its
        arrays, or trained again on the labels it was trained on. Meanwhile the session
        serves its cold start (or the model it started from); a round trained here first (a
        foreground retrain) makes it unnecessary."""
        session, rounds = self.session, self.session.rounds
        labels, audit, round_ = self.rebuild
        with rounds.lock:
            with session.lock:
                if rounds.done or session.closed is not None:
                    return
                rounds.running += 1
            try:
                session.emit("retrain_started")
                model = self.saved_model(labels, audit, round_)
                trained = model is None
                if trained:
                    model, _ = rounds.fit(labels, audit, round_)
                with session.lock:
                    skipped = set(session.item_state.skipped)
                queue = session.ranker.rank(model, skipped)
            except KeyboardInterrupt:
                message = (f"rebuilding the round-{round_} model was interrupted; the session "
                           "goes on without it (retrain() trains a new one)")
                log.warning(message)
                rounds.failed(message)
                return
            except Exception as e:
                log.warning("the round-%d model could not be rebuilt: %s: %s", round_,
                            type(e).__name__, e)
                rounds.failed(f"{type(e).__name__}: {e}")
                return
            with session.lock:
                rounds.model, session.serving.queue = model, queue
                rounds.last_error = None
                rounds.running -= 1
                keep = trained and session.closed is None and session.at is None
            if keep:
                self.save_model(model)
            session.emit("retrain_finished")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
