"""The person's actions: label, skip, a page of labels at once, and undo; and picking up
what other writers did meanwhile.

Every action is durable in the store before it returns and records the role its item was
shown in. The session keeps its own undo stack (the event ids of each action), so `undo()`
takes back exactly what this session did, never another notebook's label, and moves past
actions that another handle undid already.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import pandas as pd

from workbench.learn.queue import QueueItem
from workbench.store.errors import StoreError


def item_and_role(item, query: str | None) -> tuple[str, str | None]:
    """An item id and the role it was shown in, from a QueueItem or an id."""
    if isinstance(item, QueueItem):
        return item.item_id, query or item.strategy
    return str(item), query


class Actions:
    """Labeling, skipping and undo for one session, with its undo stack."""

    def __init__(self, session):
        self.session = session
        self.stack: list[tuple[str, ...]] = []  # this session's undo stack: event ids per action
        self.label_times: list[float] = []      # monotonic times of labels, for the pace

    def record(self, event_ids: Iterable[str]) -> None:
        """One action of this session's (its events), for `undo` to take back."""
        self.stack.append(tuple(event_ids))

    def label(self, item, label, *, source: str = "human", query: str | None = None,
              event_id: str | None = None):
        """Record a label for `item` (a QueueItem or an item_id); durable on disk when this
        returns. Labeling an item that already has a label records a relabel, keeping the
        old one in history.

        `query` is the role the item was shown in; it defaults to the role this session last
        served the item in (a QueueItem carries its own), "manual" for an item the queue never
        served, or the current label's role for a relabel. `event_id` names the new event
        (see LabelStore.append)."""
        session = self.session
        session.check_open()
        item_id, query = item_and_role(item, query)
        session.pool.position(item_id)  # raises a clear KeyError for unknown ids
        state = session.item_state
        value = state.check_label(label, item_id)
        with session.lock:
            action = state.label_action(item_id)
            role = state.role(item_id, query, action)
            event = session.store.append(item_id, str(value), action=action, source=source,
                                         annotator=session.annotator, query=role, event_id=event_id)
            state.set_label(item_id, value, role)
            session.serving.focuses.mark_done(item_id)
            state.annotate(item_id, str(value))
            self.label_times.append(time.monotonic())
            self.record((event.event_id,))
            due = session.rounds.retrain_due()
        session.emit("labels_changed")
        if due:
            session.rounds.retrain(background=True)
        return event

    def skip(self, item=None, *, query: str | None = None, event_id: str | None = None):
        """Put an item aside (it leaves the queue); `undo` brings it back."""
        session = self.session
        session.check_open()
        if item is None:
            head = session.serving.next()
            if head is None:
                raise ValueError("nothing to skip: the queue is empty")
            item = head
        item_id, query = item_and_role(item, query)
        session.pool.position(item_id)
        state = session.item_state
        with session.lock:
            role = state.role(item_id, query, "skip")  # served, or listed by an open review
            if item_id in state.labels and role == "review":
                raise ValueError(f"item {item_id!r} is shown for review and has a label, which a "
                                 "skip would take away; session.defer(item) leaves it for later")
            event = session.store.append(item_id, None, action="skip", source="human",
                                         annotator=session.annotator, query=role, event_id=event_id)
            state.set_skipped(item_id)
            session.serving.focuses.mark_done(item_id)
            state.annotate(item_id, None)
            self.record((event.event_id,))
        session.emit("labels_changed")
        return event

    def label_many(self, labels: Mapping | Iterable, *, skips: Iterable = (),
                   source: str = "human") -> list[str]:
        """Label and skip many items as one action (a grid page): one file on disk, so all of
        it or none of it lands, and one `undo()` takes all of it back. Returns the event ids.

        `labels`: {item_id: label}, or rows (item_id, label[, source[, query[, event_id]]]);
        `skips`: item ids, or rows (item_id[, query[, event_id]])."""
        session = self.session
        session.check_open()
        state = session.item_state
        rows = labels.items() if isinstance(labels, Mapping) else labels
        records = []
        with session.lock:
            for row in rows:
                item_id, value, row_source, query, event_id = (*row, None, None, None)[:5]
                item_id, query = item_and_role(item_id, query)
                session.pool.position(item_id)
                value = state.check_label(value, item_id)
                action = state.label_action(item_id)
                records.append({"item_id": item_id, "label": str(value), "action": action,
                                "source": row_source or source, "event_id": event_id,
                                "query": state.role(item_id, query, action), "value": value})
            for row in skips:
                item_id, query, event_id = ((row, None, None) if isinstance(row, str)
                                            else (*row, None, None)[:3])
                item_id, query = item_and_role(item_id, query)
                session.pool.position(item_id)
                records.append({"item_id": item_id, "label": None, "action": "skip",
                                "source": "human", "event_id": event_id,
                                "query": state.role(item_id, query, "skip"), "value": None})
            seen = [r["item_id"] for r in records]
            if len(set(seen)) != len(seen):
                raise ValueError(f"label_many got an item twice: {sorted(seen)}")
            if not records:
                return []
            frame = pd.DataFrame(records).drop(columns="value").assign(annotator=session.annotator)
            event_ids = session.store.append_many(frame, source=source)
            for record in records:
                if record["action"] == "skip":
                    state.set_skipped(record["item_id"])
                else:
                    state.set_label(record["item_id"], record["value"], record["query"])
                    self.label_times.append(time.monotonic())
            self.record(event_ids)
            due = session.rounds.retrain_due()
        session.emit("labels_changed")
        if due:
            session.rounds.retrain(background=True)
        return event_ids

    def undo(self, event_ids: str | Iterable[str] | None = None) -> list[str]:
        """Take back an action; returns the ids of the items it touched ([]: nothing to undo).

        With no argument: this session's latest action that still stands (a label, a skip,
        or a whole `label_many` page); never another notebook's. Events of this session's
        that another handle undid meanwhile (a second notebook, another process, code on the
        store) are passed over, so an undo there moves this one on to the previous action;
        [] says that nothing of this session's is left to undo. With `event_ids`: exactly
        those events, whoever wrote them. All of them are retracted in one write."""
        session = self.session
        session.check_open()
        with session.lock:
            if event_ids is None:
                changed = self.sync_locked()  # undos written elsewhere leave the stack first
                targets, undone = self._retract_latest_action()
                if not targets:
                    if changed:
                        session.emit("labels_changed")
                    return []
            else:
                targets = [event_ids] if isinstance(event_ids, str) else list(event_ids)
                undone = session.store.retract(targets, annotator=session.annotator)
            gone = set(targets)
            self.stack = [a for a in self.stack if not gone & set(a)]
            items = list(dict.fromkeys(e.item_id for e in undone))
            for target in targets:  # an item brought back is shown again in its old role
                event = session.store.event(target)
                if event["query"]:
                    session.item_state.served(event["item_id"], event["query"])
            session.item_state.absorb(items)
            session.serving.focuses.bring_back(items)  # an undone review comes back too
            session.serving.queue.rewind()
        session.emit("labels_changed")
        return items

    def _retract_latest_action(self) -> tuple[list[str], list]:
        """Retract what stands of this session's latest action; returns its event ids and
        the undo events written, ([], []) when the undo stack is empty.

        Another handle may have undone the action in a way this session has not read yet (a
        write after its last look, an undo that a merge or pull brought into this branch):
        the store then refuses the write, and asking the store which of the action's events
        are undone takes those off the stack. A refusal that this does not explain is raised."""
        store = self.session.store
        while self.stack:
            targets = self.stack[-1]
            try:
                return list(targets), store.retract(list(targets), annotator=self.session.annotator)
            except StoreError:
                self.sync_locked()
                items = {store.event(e)["item_id"] for e in targets}
                self._forget_undone(set(targets), items)
                if self.stack and self.stack[-1] == targets:
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
            history = self.session.store.item_history(item_id)
            gone.update(set(history.loc[history["undone"], "event_id"]) & event_ids)
        if gone:
            self.stack = [left for action in self.stack
                          if (left := tuple(e for e in action if e not in gone))]

    def sync(self) -> list[str]:
        """Pick up what other sessions wrote to the store since the last look; returns the
        ids of items whose state changed. The watcher thread calls this twice a second."""
        session = self.session
        with session.lock:
            changed = self.sync_locked()
            session.claims.renew()
        if changed:
            session.emit("labels_changed")
        return changed

    def sync_locked(self, *, quick: bool = False) -> list[str]:
        """`sync` for a caller that holds the session's lock; emits nothing. `quick` (what
        serving an item uses): the store's folder is listed only when its log stamp says a
        writer published since the last listing (workbench.store.files.STAMP)."""
        session = self.session
        if session.at is not None:  # a commit's labels do not change
            return []
        new = session.store.sync(quick=quick)
        if not new:
            return []
        # Another handle's undo of this session's events: they leave its undo stack. (This
        # session's own undos come back here too, already off the stack.)
        undos = {e["target"]: e["item_id"] for e in new if e["action"] == "undo"}
        if undos and self.stack:
            mine = {e for action in self.stack for e in action}
            undone = {target: item for target, item in undos.items() if target in mine}
            if undone:
                self._forget_undone(set(undone), set(undone.values()))
        state = session.item_state
        touched = [e for e in new if e["item_id"] in session.overlap_items]
        if touched:
            state.reannotate({e["item_id"] for e in touched})
        changed = state.absorb(list(dict.fromkeys(e["item_id"] for e in new if e["item_id"])))
        if any(not (i in state.labels or i in state.skipped) for i in changed):
            session.serving.queue.rewind()  # an item came back (someone's undo): it is pending again
        return changed

    def acted_here(self, item_id: str) -> bool:
        """Whether the item's state (its label or skip) was written by this session (the
        widget, or code in the same kernel), not by another notebook or a teammate."""
        item_id = str(item_id)
        with self.session.lock:
            mine = {e for action in self.stack for e in action}
            if not mine:
                return False
            top = self.session.store.states([item_id]).get(item_id)
        return top is not None and top["event_id"] in mine

    def progress(self) -> dict:
        """Labeled, skipped and queued counts, the labeling pace and the queues."""
        session = self.session
        with session.lock:
            now = time.monotonic()
            recent = [t for t in self.label_times if now - t < 600][-30:]
            span = recent[-1] - recent[0] if len(recent) >= 2 else 0.0
            # A rate from a few seconds (a script's burst of labels) says nothing about a person.
            rate = (len(recent) - 1) / span * 60 if span >= 10 else 0.0
            state = session.item_state
            n_done = len(state.labels) + len(state.skipped)
            return {"n_labeled": len(state.labels), "n_skipped": len(state.skipped),
                    "n_queued": len(session.pool) - n_done, "pool_size": len(session.pool),
                    "labels_per_minute": round(rate, 1), "queues": session.serving.queues}
