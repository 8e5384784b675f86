"""Reviewing labels, one room of `Session`: the suspected mislabels put in front of
the queue, reviews recorded as events, and the model's confident suggestions accepted in bulk
after a person has checked a random sample of them.

- `review()` shows the suspects (see `workbench.loop.cleaning.suspects`) one at a time in the
  role "review": keeping a label writes a `confirm` event (it carries the label it kept and
  changes nothing else), a class key a `relabel`, `defer` leaves the item for later without an
  event. After every training round the rest of the queue is ranked again on the new model.
  A confirmed item is not asked again unless there is new evidence: its label changed since,
  the held-out models now suggest another class, or its score rose by more than a tenth.
  In a spans or boxes pool one card per item holds all its doubted parts, and the person
  keeps or fixes the item's own spans or boxes (`workbench.loop.review_parts`).
- `accept_suggestions()` proposes the confident predictions for unlabeled items and puts a
  random sample of them in the queue in the role "spot-check"; `SuggestionBatch.precision()`
  estimates the batch's precision from what the person said about the sample (a Wilson 95%
  interval), and `accept()` writes the rest as `source="suggestion"` events in one file (and
  one commit), which one `undo()` takes back. In a spans or boxes pool a suggestion is the
  item's whole label, sure only when the model is sure of every part and that nothing else is
  there, and a spot-checked item agrees when the person's spans are the same, or their boxes
  the same one to one at IoU >= 0.5 (`workbench.loop.suggest_parts`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data.tasks import is_parts
from workbench.loop import review_parts, suggest_parts
from workbench.loop.acting import item_and_role

log = logging.getLogger(__name__)

REVIEW = "review"  # the role of an item shown because it is suspected of a wrong label
SPOT_CHECK = "spot-check"  # a random item of a proposed batch of suggestions, checked by a person
BULK = "bulk"  # the role of a label accepted in bulk (the item itself was not shown)
NEW_EVIDENCE = 0.1  # a confirmed item comes back when its score rises by more than this share
_EVIDENCE = "_review-evidence.json"  # store sidecar: what the models said when an item was confirmed


class Reviewing:
    """Cleaning and review for one session: suspects, duplicates, the review queue, confirm
    and defer, and suggestions accepted in bulk. It uses the session's public seams only."""

    def __init__(self, session):
        self.session = session
        self.table: pd.DataFrame | None = None  # the open review, by item_id
        self.k: int | None = None               # how many the open review asked for

    def close(self) -> None:
        """The review queue was cleared: nothing to re-rank after the next round."""
        self.table = None

    # -- suspected mislabels ------------------------------------------------------------------
    def suspects(self, k: int | None = None, **options) -> pd.DataFrame:
        """The labeled items most likely to be mislabeled, most suspicious first, scored by
        models that never trained on them (see `workbench.loop.cleaning.suspects` for the
        columns and the `method`, `folds` and `passes` options). In a multi-label pool, every
        (item, class) decision, most suspicious first (see
        `workbench.loop.cleaning_multi_label`; option `folds`). In a spans pool, every span
        given and every span a held-out tagger marks that the labels leave out (see
        `workbench.loop.cleaning_spans`; option `folds`). In a boxes pool, every box given
        and every object a held-out detector finds that the labels leave out (see
        `workbench.loop.cleaning_boxes`; option `folds`)."""
        from workbench.loop.cleaning import check_k, suspects

        k = check_k(k)  # one rule for every task: None, or a positive int
        if self.session.task == "spans":
            from workbench.loop.cleaning_spans import span_suspects

            return span_suspects(self.session, k, **options)
        if self.session.task == "boxes":
            from workbench.loop.cleaning_boxes import box_suspects

            return box_suspects(self.session, k, **options)
        if self.session.task == "multi_label":
            from workbench.loop.cleaning_multi_label import multi_label_suspects

            return multi_label_suspects(self.session, k, **options)
        return suspects(self.session, k, **options)

    def duplicates(self, *, near: bool = True, threshold: float | None = None) -> pd.DataFrame:
        """Exact and near-duplicate items, with leakage between the test split or the audit
        sample and the training labels flagged (see `workbench.loop.duplicates`)."""
        from workbench.loop.duplicates import duplicates

        return duplicates(self.session, near=near, threshold=threshold)

    def review(self, k: int | None = None) -> pd.DataFrame:
        """Show next, one at a time in the role "review", the labels that models trained without
        them would change (`suspects()` whose suggestion differs from the given label), the
        `k` most suspicious or all of them, and return them.

        In the widget: Enter keeps the label (a confirm event), a class key relabels it, s
        leaves it for later. Items whose confirmation still stands are left out unless new
        evidence arrived; after each training round the rest is ranked again.

        In a spans or boxes pool, the `k` most suspicious items with a doubt (a part given
        that the held-out model marks otherwise, or one it finds left out), each as
        suspicious as its most suspicious doubt, its reason naming them all: the widget
        shows the item's own spans or boxes, saving them unchanged confirms, changed
        relabels (see `workbench.loop.review_parts`)."""
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0):
            # head(-1) would be every suspect but the last, head(2.5) a pandas TypeError
            raise ValueError(f"k must be a whole number of items >= 0 (or None: all), got {k!r}")
        table = self._open_suspects(k)
        self.session.focus(table["item_id"], role=REVIEW,
                           reasons=dict(zip(table["item_id"], table["reason"])),
                           suggestions=self._held_out_suggestions(table))
        with self.session.lock:
            self.k = k
            self.table = table.set_index("item_id")
        return table

    def _held_out_suggestions(self, table: pd.DataFrame) -> dict:
        """item -> (class, probability) that the models which never saw its label give."""
        if is_parts(self.session):  # the label with its doubts applied; numbers in the reason
            return {i: (s, None) for i, s in zip(table["item_id"], table["suggested"])}
        by_name = self.session.class_by_name
        return {i: (by_name.get(str(s), s), float(c))
                for i, s, c in zip(table["item_id"], table["suggested"], table["confidence"])}

    def confirm(self, item, *, query: str | None = None, event_id: str | None = None):
        """Keep an item's label after looking at it again: a `confirm` event that carries the
        label it keeps (history, blame and `item_history` show who checked it, and when)."""
        session = self.session
        session.check_open()
        item_id, query = item_and_role(item, query)
        session.pool.position(item_id)
        state = session.item_state
        with session.lock:
            if item_id not in state.labels:
                raise ValueError(f"item {item_id!r} has no label to confirm; label it instead")
            role = state.role(item_id, query, "confirm")
            label = str(state.labels[item_id])
            event = session.store.append(item_id, label, action="confirm", source="human",
                                         annotator=session.annotator, query=role, event_id=event_id)
            session.serving.focuses.mark_done(item_id)
            session.actions.record((event.event_id,))
            if self.table is not None and item_id in self.table.index:
                row = self.table.loc[item_id]
                evidence = session.store.load_sidecar(_EVIDENCE) or {}
                evidence[item_id] = {"label": label, "suggested": str(row["suggested"]),
                                     "score": float(row["score"])}
                session.store.save_sidecar(_EVIDENCE, evidence)
        session.emit("labels_changed")
        return event

    def defer(self, item) -> None:
        """Leave a review item for later: nothing is written, the item leaves this review and
        comes back at the next `review()`."""
        session = self.session
        item_id, _ = item_and_role(item, None)
        session.pool.position(item_id)
        with session.lock:
            focus = session.serving.focuses.serving(item_id)
            if focus is not None:
                focus.done.add(item_id)
        session.release([item_id])
        session.emit("labels_changed")

    def _open_suspects(self, k: int | None) -> pd.DataFrame:
        """The labels the held-out models would change, less the items whose confirmation
        stands and has no new evidence."""
        table = self.session.suspects(None)  # the public seam: what the user would see
        if self.session.task == "multi_label":  # one row per (item, class): one per item here
            from workbench.loop.cleaning_multi_label import by_item

            table = by_item(table)
        parts = is_parts(self.session)
        if parts:  # one row per part: one card per item with a doubt
            table = review_parts.by_item(self.session, table)
        else:
            table = table[[str(a) != str(b) for a, b in zip(table["suggested"], table["given"])]]
        confirmed = self.session.store.confirmations()
        evidence = self.session.store.load_sidecar(_EVIDENCE) or {}
        keep = []
        for row in table.itertuples():
            if row.item_id not in confirmed.index:
                keep.append(True)
                continue
            then = evidence.get(row.item_id)
            if parts:
                keep.append(review_parts.still_open(row.score, then))
                continue
            keep.append(then is not None and (
                str(row.suggested) != then["suggested"]
                or row.score > then["score"] + NEW_EVIDENCE * abs(then["score"])))
        table = table[np.asarray(keep, dtype=bool)].reset_index(drop=True)
        return table if k is None else table.head(k)

    def rereview(self, event: str) -> None:
        """After a training round, rank what is left of an open review on the new model."""
        if event != "retrain_finished" or self.table is None:
            return
        session = self.session
        focuses = session.serving.focuses
        with session.lock:
            focus = focuses.get(REVIEW)
            if focus is None or not focus.pending():
                self.table = None
                return
            done = set(focus.done)
        try:
            table = self._open_suspects(None)
        except ValueError:  # too few labels now (an undo): keep the review as it is
            log.debug("review not re-ranked", exc_info=True)
            return
        table = table[~table["item_id"].isin(done)]
        if self.k is not None:
            table = table.head(max(0, self.k - len(done)))
        with session.lock:
            if focuses.get(REVIEW) is not focus:  # cleared or opened again meanwhile
                return
            focus.reorder(list(table["item_id"]) + [i for i in focus.items if i in done])
            focus.reasons.update(zip(table["item_id"], table["reason"]))
            focus.suggestions.update(self._held_out_suggestions(table))
            self.table = table.set_index("item_id")
        session.emit("queue_changed")

    # -- suggestions in bulk ------------------------------------------------------------------
    def accept_suggestions(self, min_confidence: float = 0.95, *, review: int = 50,
                           seed: int | None = None) -> SuggestionBatch:
        """Propose the model's predictions with confidence >= `min_confidence` for the
        unlabeled items (never audit or overlap items, which people must label), and put a
        random sample of `review` of them in front of the queue, in the role "spot-check".
        Nothing is written until `batch.accept()`.

        In a spans or boxes pool the suggestion is the item's whole label (the tagger's
        spans, the detector's boxes) and its confidence covers both its parts and that
        nothing else is there: the least sure token's tag, or min(the least sure box, 1 - the
        best candidate box left out); see `workbench.loop.suggest_parts`."""
        if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)) \
                or not 0 < min_confidence <= 1:
            raise ValueError(f"min_confidence must be a probability in (0, 1], got {min_confidence!r}")
        if isinstance(review, bool) or not isinstance(review, (int, np.integer)) or review < 0:
            raise ValueError(f"review must be a number of items >= 0, got {review!r}")
        session = self.session
        parts = is_parts(session)
        with session.lock:
            model = session.rounds.model
            if model is None:
                raise ValueError("no model yet: label some items and retrain before accepting "
                                 "suggestions")
            ids = session.pool.item_ids
            state = session.item_state
            open_ = ~ids.isin(list(state.labels) + list(state.skipped) + list(session.overlap_items))
            open_ &= ~session.ranker.in_reserve
            positions = np.flatnonzero(open_)
            proba = None if parts else (model.proba[positions] if len(positions)
                                        else np.zeros((0, len(session.classes))))
        if parts:  # a tagger's or a detector's pass over the open items: outside the lock
            suggestions, confidence = suggest_parts.proposals(session, model, positions)
            sure = confidence >= min_confidence
            suggestions = [s for s, keep in zip(suggestions, sure) if keep]
        else:
            confidence = session.ranker.confidence(proba) if len(proba) else np.zeros(0)
            sure = confidence >= min_confidence
            suggestions = [session.ranker.suggestion(p)[0] for p in proba[sure]]
        proposed = pd.DataFrame({"item_id": ids[positions[sure]].to_numpy(),
                                 # SpanList and BoxList are tuples: kept whole, one per row
                                 "suggestion": pd.Series(suggestions, dtype=object) if parts else suggestions,
                                 "confidence": confidence[sure].astype(float)})
        proposed = proposed.sort_values("confidence", ascending=False, kind="stable", ignore_index=True)
        rng = np.random.default_rng(session.seed if seed is None else seed)
        sample = list(proposed["item_id"].to_numpy()[
            rng.permutation(len(proposed))[:min(review, len(proposed))]])
        suggestion = dict(zip(proposed["item_id"], proposed["suggestion"]))
        shown, whole = None, ""
        if parts:  # the card shows the batch's suggestion (the one its precision is about), in words too
            sure_of = dict(zip(proposed["item_id"], proposed["confidence"]))
            shown = {i: (suggestion[i], float(sure_of[i])) for i in sample}
            whole = " (every part, and that nothing else is there)"
        says = {i: "it suggests " + suggest_parts.say(session, i, suggestion[i]) if parts else
                f"it says {suggestion[i]}" for i in sample}
        session.focus(sample, role=SPOT_CHECK, suggestions=shown, reasons={
            i: f"spot-check: 1 of {len(sample)} random items of {len(proposed)} suggestions the "
               f"model is >= {min_confidence:.0%} sure of{whole}; {says[i]}" for i in sample})
        return SuggestionBatch(session, proposed, sample, min_confidence, model.round)


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
        """The sample items a person has labeled since: item_id, suggestion, label, agrees
        (the label is the suggestion; in a spans pool the very same spans, in a boxes pool
        the same boxes one to one, each of the same class at IoU >= 0.5: see
        `workbench.loop.suggest_parts.agrees`)."""
        session = self.session
        labels = session.labels
        rows = self.proposed.set_index("item_id").loc[self.sample, ["suggestion"]]
        rows = rows[rows.index.isin(list(labels))]
        if is_parts(session):
            rows["label"] = pd.Series([labels[i] for i in rows.index], index=rows.index, dtype=object)
            rows["agrees"] = pd.Series([suggest_parts.agrees(session, i, a, b) for i, a, b in
                                        zip(rows.index, rows["label"], rows["suggestion"])],
                                       index=rows.index, dtype=bool)
        else:
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
        state = session.item_state
        with session.lock:
            taken = set(state.labels) | set(state.skipped) | set(self.sample)
            rows = [(i, s, "suggestion", BULK) for i, s in zip(self.proposed["item_id"],
                                                               self.proposed["suggestion"])
                    if i not in taken]
            for item_id, *_ in rows:
                state.served(item_id, BULK)
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
