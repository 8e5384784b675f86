"""Reviewing labels, a part of `Session` (a mixin): the suspected mislabels put in front of
the queue, reviews recorded as events, and the model's confident suggestions accepted in bulk
after a person has checked a random sample of them.

- `review()` shows the suspects (see `workbench.loop.cleaning.suspects`) one at a time in the
  role "review": keeping a label writes a `confirm` event (it carries the label it kept and
  changes nothing else), a class key a `relabel`, `defer` leaves the item for later without an
  event. After every training round the rest of the queue is ranked again on the new model.
  A confirmed item is not asked again unless there is new evidence: its label changed since,
  the held-out models now suggest another class, or its score rose by more than a tenth.
- `accept_suggestions()` proposes the confident predictions for unlabeled items and puts a
  random sample of them in the queue in the role "spot-check"; `SuggestionBatch.precision()`
  estimates the batch's precision from what the person said about the sample (a Wilson 95%
  interval), and `accept()` writes the rest as `source="suggestion"` events in one file (and
  one commit), which one `undo()` takes back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

REVIEW = "review"  # the role of an item shown because it is suspected of a wrong label
SPOT_CHECK = "spot-check"  # a random item of a proposed batch of suggestions, checked by a person
BULK = "bulk"  # the role of a label accepted in bulk (the item itself was not shown)
NEW_EVIDENCE = 0.1  # a confirmed item comes back when its score rises by more than this share
_EVIDENCE = "_review-evidence.json"  # store sidecar: what the models said when an item was confirmed


class Reviewing:
    """The review methods of `Session` (they use its lock, store, queue and model)."""

    # -- suspected mislabels ------------------------------------------------------------------
    def suspects(self, k: int | None = None, **options) -> pd.DataFrame:
        """The labeled items most likely to be mislabeled, most suspicious first, scored by
        models that never trained on them (see `workbench.loop.cleaning.suspects` for the
        columns and the `method`, `folds` and `passes` options)."""
        from workbench.loop.cleaning import suspects

        return suspects(self, k, **options)

    def duplicates(self, *, near: bool = True, threshold: float | None = None) -> pd.DataFrame:
        """Exact and near-duplicate items, with leakage between the test split or the audit
        sample and the training labels flagged (see `workbench.loop.duplicates`)."""
        from workbench.loop.duplicates import duplicates

        return duplicates(self, near=near, threshold=threshold)

    def review(self, k: int | None = None) -> pd.DataFrame:
        """Show next, one at a time in the role "review", the labels that models trained without
        them would change (`suspects()` whose suggestion differs from the given label), the
        `k` most suspicious or all of them, and return them.

        In the widget: Enter keeps the label (a confirm event), a class key relabels it, s
        leaves it for later. Items whose confirmation still stands are left out unless new
        evidence arrived; after each training round the rest is ranked again."""
        table = self._open_suspects(k)
        self._focus_review(table)
        with self._lock:
            self._review_k = k
            self._review_table = table.set_index("item_id")
        return table

    def _focus_review(self, table: pd.DataFrame) -> None:
        self.focus(table["item_id"], role=REVIEW, reasons=dict(zip(table["item_id"], table["reason"])),
                   suggestions=self._held_out_suggestions(table))

    def _held_out_suggestions(self, table: pd.DataFrame) -> dict:
        """item -> (class, probability) that the models which never saw its label give."""
        by_name = dict(zip(self.class_names, self.classes))
        return {i: (by_name.get(str(s), s), float(c))
                for i, s, c in zip(table["item_id"], table["suggested"], table["confidence"])}

    def confirm(self, item, *, query: str | None = None, event_id: str | None = None):
        """Keep an item's label after looking at it again: a `confirm` event that carries the
        label it keeps (history, blame and `item_history` show who checked it, and when)."""
        from workbench.loop.session import _item_and_role

        self._check_open()
        item_id, query = _item_and_role(item, query)
        self.pool.position(item_id)
        with self._lock:
            if item_id not in self._labels:
                raise ValueError(f"item {item_id!r} has no label to confirm; label it instead")
            role = self._role(item_id, query, "confirm")
            label = str(self._labels[item_id])
            event = self.store.append(item_id, label, action="confirm", source="human",
                                      annotator=self.annotator, query=role, event_id=event_id)
            self._focuses.mark_done(item_id)
            self._actions.append((event.event_id,))
            table = getattr(self, "_review_table", None)
            if table is not None and item_id in table.index:
                row = table.loc[item_id]
                evidence = self.store.load_sidecar(_EVIDENCE) or {}
                evidence[item_id] = {"label": label, "suggested": str(row["suggested"]),
                                     "score": float(row["score"])}
                self.store.save_sidecar(_EVIDENCE, evidence)
        self._emit("labels_changed")
        return event

    def defer(self, item) -> None:
        """Leave a review item for later: nothing is written, the item leaves this review and
        comes back at the next `review()`."""
        from workbench.loop.session import _item_and_role

        item_id, _ = _item_and_role(item, None)
        self.pool.position(item_id)
        with self._lock:
            focus = self._focuses.serving(item_id)
            if focus is not None:
                focus.done.add(item_id)
        self.release([item_id])
        self._emit("labels_changed")

    def _open_suspects(self, k: int | None) -> pd.DataFrame:
        """The labels the held-out models would change, less the items whose confirmation
        stands and has no new evidence."""
        table = self.suspects(None)
        table = table[[str(a) != str(b) for a, b in zip(table["suggested"], table["given"])]]
        confirmed = self.store.confirmations()
        evidence = self.store.load_sidecar(_EVIDENCE) or {}
        keep = []
        for row in table.itertuples():
            if row.item_id not in confirmed.index:
                keep.append(True)
                continue
            then = evidence.get(row.item_id)
            keep.append(then is not None and (
                str(row.suggested) != then["suggested"]
                or row.score > then["score"] + NEW_EVIDENCE * abs(then["score"])))
        table = table[np.asarray(keep, dtype=bool)].reset_index(drop=True)
        return table if k is None else table.head(k)

    def _rereview(self, event: str) -> None:
        """After a training round, rank what is left of an open review on the new model."""
        if event != "retrain_finished" or getattr(self, "_review_table", None) is None:
            return
        with self._lock:
            focus = self._focuses.get(REVIEW)
            if focus is None or not focus.pending():
                self._review_table = None
                return
            done = set(focus.done)
        try:
            table = self._open_suspects(None)
        except ValueError:  # too few labels now (an undo): keep the review as it is
            log.debug("review not re-ranked", exc_info=True)
            return
        table = table[~table["item_id"].isin(done)]
        if self._review_k is not None:
            table = table.head(max(0, self._review_k - len(done)))
        with self._lock:
            if self._focuses.get(REVIEW) is not focus:  # cleared or opened again meanwhile
                return
            focus.reorder(list(table["item_id"]) + [i for i in focus.items if i in done])
            focus.reasons.update(zip(table["item_id"], table["reason"]))
            focus.suggestions.update(self._held_out_suggestions(table))
            self._review_table = table.set_index("item_id")
        self._emit("queue_changed")

    # -- suggestions in bulk ------------------------------------------------------------------
    def accept_suggestions(self, min_confidence: float = 0.95, *, review: int = 50,
                           seed: int | None = None) -> SuggestionBatch:
        """Propose the model's predictions with confidence >= `min_confidence` for the
        unlabeled items (never audit or overlap items, which people must label), and put a
        random sample of `review` of them in front of the queue, in the role "spot-check".
        Nothing is written until `batch.accept()`."""
        if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)) \
                or not 0 < min_confidence <= 1:
            raise ValueError(f"min_confidence must be a probability in (0, 1], got {min_confidence!r}")
        if isinstance(review, bool) or not isinstance(review, (int, np.integer)) or review < 0:
            raise ValueError(f"review must be a number of items >= 0, got {review!r}")
        with self._lock:
            model = self._model
            if model is None:
                raise ValueError("no model yet: label some items and retrain before accepting "
                                 "suggestions")
            ids = self.pool.item_ids
            open_ = ~ids.isin(list(self._labels) + list(self._skipped) + list(self._overlap))
            open_ &= ~self._in_reserve
            positions = np.flatnonzero(open_)
            proba = model.proba[positions] if len(positions) else np.zeros((0, len(self.classes)))
        best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
        confidence = proba.max(axis=1) if len(proba) else np.zeros(0)
        sure = confidence >= min_confidence
        proposed = pd.DataFrame({"item_id": ids[positions[sure]].to_numpy(),
                                 "suggestion": [self.classes[b] for b in best[sure]],
                                 "confidence": confidence[sure].astype(float)})
        proposed = proposed.sort_values("confidence", ascending=False, ignore_index=True)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        sample = list(proposed["item_id"].to_numpy()[
            rng.permutation(len(proposed))[:min(review, len(proposed))]])
        suggestion = dict(zip(proposed["item_id"], proposed["suggestion"]))
        self.focus(sample, role=SPOT_CHECK, reasons={
            i: f"spot-check: 1 of {len(sample)} random items of {len(proposed)} suggestions the "
               f"model is >= {min_confidence:.0%} sure of; it says {suggestion[i]}" for i in sample})
        return SuggestionBatch(self, proposed, sample, min_confidence, model.round)


@dataclass
class SuggestionBatch:
    """A proposed batch of model suggestions, its random review sample, and what came of it."""

    session: object
    proposed: pd.DataFrame  # item_id, suggestion, confidence
    sample: list[str]
    min_confidence: float
    model_round: int
    accepted: list[str] = field(default_factory=list)  # event ids, once accepted

    def __len__(self) -> int:
        return len(self.proposed)

    def reviewed(self) -> pd.DataFrame:
        """The sample items a person has labeled since: item_id, suggestion, label, agrees."""
        labels = self.session.labels
        rows = self.proposed.set_index("item_id").loc[self.sample, ["suggestion"]]
        rows = rows[rows.index.isin(list(labels))]
        rows["label"] = [labels[i] for i in rows.index]
        rows["agrees"] = [str(a) == str(b) for a, b in zip(rows["label"], rows["suggestion"])]
        return rows.reset_index()

    def precision(self) -> dict:
        """The batch's estimated precision from the reviewed sample: {"estimate", "low",
        "high" (a Wilson 95% interval), "reviewed", "agreed", "sample"}."""
        from scipy.stats import binomtest

        seen = self.reviewed()
        n, k = len(seen), int(seen["agrees"].sum())
        out = {"estimate": None, "low": None, "high": None, "reviewed": n, "agreed": k,
               "sample": len(self.sample)}
        if n:
            ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
            out.update(estimate=k / n, low=float(ci.low), high=float(ci.high))
        return out

    def accept(self, *, force: bool = False, message: str | None = None) -> list[str]:
        """Write the batch, less the reviewed sample (which has people's labels) and items
        labeled meanwhile, as one `source="suggestion"` action; returns the event ids. Refused
        until the whole sample is reviewed, unless `force=True`."""
        if self.accepted:
            raise ValueError("this batch was accepted already")
        session = self.session
        p = self.precision()
        if p["reviewed"] < p["sample"] and not force:
            raise ValueError(f"review the sample first: {p['reviewed']} of {p['sample']} items "
                             f"reviewed (or accept(force=True))")
        with session._lock:
            taken = set(session._labels) | set(session._skipped) | set(self.sample)
            rows = [(i, s, "suggestion", BULK) for i, s in zip(self.proposed["item_id"],
                                                               self.proposed["suggestion"])
                    if i not in taken]
            for item_id, *_ in rows:
                session._served(item_id, BULK)
        if not rows:
            return []
        store = session.store
        # One action, one commit, on a store without commits yet too (its first commit then
        # holds the labels people gave before).
        if store.status()["uncommitted"]:
            # People's labels so far (the spot check among them) get a commit of their own,
            # so that the batch's commit holds the suggestions alone.
            store.commit(f"Labels before accepting suggestions, with a spot check of "
                         f"{p['reviewed']} of them")
        self.accepted = session.label_many(rows, source="suggestion")
        share = ("no reviewed sample" if p["estimate"] is None else
                 f"precision {p['estimate']:.0%} [{p['low']:.0%}, {p['high']:.0%}] on "
                 f"{p['reviewed']} reviewed")
        store.commit(message or f"Accept {len(rows)} suggestions of the round-"
                     f"{self.model_round} model at >= {self.min_confidence:.0%} ({share})")
        return self.accepted
