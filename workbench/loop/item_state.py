"""What a session knows of each item: its label, the role that label was given in, whether it
is skipped or an audit label, each annotator's label of an overlap item, and the roles the
session showed it in.

The store is the source of truth; this is the session's reading of it, kept in memory so that
serving and training never scan the log. `load` reads it at the start, `absorb` re-reads the
items another writer touched, and `set_label` / `set_skipped` record the session's own writes
once they are durable. Every change bumps `version`, which the trainer compares to skip rounds
with nothing new.
"""

from __future__ import annotations

import logging

from workbench.data.boxes import box_list, image_size
from workbench.data.spans import span_list
from workbench.data.tasks import BOXES, MULTI_LABEL, SPANS, label_set, one_class
from workbench.learn.queue import AUDIT
from workbench.loop.agreement import annotations

log = logging.getLogger(__name__)
MANUAL = "manual"  # the role of an item labeled without being served by the queue


class ItemState:
    """Labels, roles, skips and the roles items were served in, for one session."""

    def __init__(self, session):
        self.session = session
        self.labels: dict = {}                        # item -> class value
        self.roles: dict[str, str] = {}               # item -> the role its label was given in
        self.audit: set[str] = set()                  # items labeled in an audit slot
        self.skipped: set[str] = set()
        self.version = 0  # counts changes of the labels: the trainer skips rounds with nothing new
        self.issued: dict[str, list[str]] = {}        # item -> the roles this session showed it in
        self.annotations: dict[str, dict[str, str]] = {}  # overlap item -> annotator -> label

    # -- classes ------------------------------------------------------------------------------
    def check_label(self, label, item_id: str):
        """The value a label of `item_id` names: a class (a class value or its string), in a
        multi-label pool a LabelSet (a list of classes, or the JSON list the store holds), in a
        spans pool a SpanList checked against the item's text, in a boxes pool a BoxList checked
        against the image's own size (not the canvas a pool of mixed sizes pads it to); a
        ValueError naming the label and what was expected otherwise."""
        session = self.session
        if session.task == BOXES:
            # an unknown image is named as such; the boxes are checked against its own size
            return box_list(label, *image_size(session.pool, str(item_id)), session.class_names)
        if session.task == SPANS:
            return span_list(label, session.pool.text_of(item_id), session.class_names,
                             overlapping=session.pool.overlapping)
        if session.task == MULTI_LABEL:
            return label_set(label, session.class_by_name)
        return one_class(label, session.class_by_name)

    # -- reading -----------------------------------------------------------------------------
    def current(self) -> dict:
        """Current labels, item_id -> class value (every annotator's)."""
        with self.session.lock:
            return dict(self.labels)

    def label_of(self, item_id: str):
        """The item's current label (a class value), None if it has none."""
        with self.session.lock:
            return self.labels.get(str(item_id))

    def role_of(self, item_id: str) -> str | None:
        """The role the item's current label was given in (None: not labeled)."""
        with self.session.lock:
            return self.roles.get(str(item_id))

    # -- reading the store --------------------------------------------------------------------
    def load(self) -> None:
        """Every item's state as the store holds it now (or as of the session's commit)."""
        session, store = self.session, self.session.store
        self.labels, self.roles, self.audit, self.skipped = {}, {}, set(), set()
        current = store.current_labels() if session.at is None else store.current_labels_at(session.at)
        for item_id, label, query in zip(current.index, current["label"], current["query"]):
            if item_id in session.pool:
                try:
                    self.labels[item_id] = self.check_label(label, item_id)
                except ValueError as e:  # written outside a session (a raw append, a resolve)
                    log.warning("label store %s holds label %r for item %r, which this session "
                                "cannot read (%s); ignored here, kept in the store: label the item "
                                "again to replace it", store.path, label, item_id, e)
                    continue
                self.roles[item_id] = query
                if query == AUDIT:
                    self.audit.add(item_id)
        if session.at is None:
            self.skipped = {i for i in store.skipped() if i in session.pool}
        # an audit label corrected since (in review, say) is still one of the random sample
        self.audit |= {i for i in store.began_in(AUDIT, at=session.at) if i in self.labels}

    def absorb(self, item_ids: list[str]) -> list[str]:
        """Re-read these items' state from the store; returns those whose state changed."""
        session = self.session
        # quick: called right after a sync or this session's own write, which listed the
        # store's folder or stamped it; listing it again finds nothing new
        states = session.store.states(item_ids, quick=True)
        was_labeled = {i: i in self.labels for i in item_ids}
        changed = []
        for item_id in item_ids:
            if item_id not in session.pool:
                continue
            top = states.get(item_id)
            action = None if top is None else top["action"]
            value, role = None, None
            if action in ("label", "relabel"):
                try:
                    value = self.check_label(top["label"], item_id)
                except ValueError:
                    log.warning("label store %s holds label %r for item %r, which is not one of "
                                "this session's classes; ignored", session.store.path, top["label"],
                                item_id)
                    continue
                role = top["query"]
            now = (value, role, action == "skip")
            if now == (self.labels.get(item_id), self.roles.get(item_id), item_id in self.skipped):
                continue  # already known (this session's own events come back this way too)
            if value is not None:
                self.set_label(item_id, value, role)
            elif action == "skip":
                self.set_skipped(item_id)
            else:  # never labeled, all undone, or removed (a restore, a merge)
                self.labels.pop(item_id, None)
                self.roles.pop(item_id, None)
                self.audit.discard(item_id)
                self.skipped.discard(item_id)
                self.version += 1
            changed.append(item_id)
        changed += self._audit_again(item_ids, states, was_labeled, changed)
        return changed

    def _audit_again(self, item_ids, states, was_labeled, changed) -> list[str]:
        """Whether an item is an audit label depends on its history (its label began in an
        audit slot, `LabelStore.began_in`), not only on the event on top: read it again for
        the items whose top does not say (an audit label relabeled in another role, and an
        undone skip that brings such a relabel back); returns the items whose membership
        changed and are not in `changed` yet. Few, so the log is rarely read here."""
        doubtful = [i for i in item_ids if i in self.labels and self.roles.get(i) != AUDIT and (
            i in self.audit or (not was_labeled[i] and (states.get(i) or {}).get("action") == "relabel"))]
        if not doubtful:
            return []
        began = self.session.store.began_in(AUDIT, items=doubtful, at=self.session.at)
        moved = [i for i in doubtful if (i in began) != (i in self.audit)]
        for item_id in moved:
            (self.audit.add if item_id in began else self.audit.discard)(item_id)
            self.version += 1
        return [i for i in moved if i not in changed]

    def reannotate(self, items: set[str]) -> None:
        """Each annotator's label of these overlap items, read again from the log."""
        mine = annotations(self.session.store.events_of(items))
        for item in items:
            self.annotations[item] = {}
        for item, who, label in mine.itertuples(index=False):
            self.annotations[item][who] = label

    # -- the session's own writes, once durable -----------------------------------------------
    def set_label(self, item_id: str, value, role: str) -> None:
        self.labels[item_id] = value
        self.roles[item_id] = role
        if role == AUDIT:  # a relabel in another role (a fix in review) keeps it an audit label
            self.audit.add(item_id)
        self.skipped.discard(item_id)
        self.session.claims.forget([item_id])  # durable now: others see it labeled
        self.version += 1

    def set_skipped(self, item_id: str) -> None:
        self.labels.pop(item_id, None)
        self.roles.pop(item_id, None)
        self.audit.discard(item_id)
        self.skipped.add(item_id)
        self.session.claims.forget([item_id])
        self.version += 1

    def annotate(self, item_id: str, label: str | None, annotator: str | None = None) -> None:
        """Record an annotator's label (None: their skip) of an overlap item."""
        if item_id not in self.session.overlap_items:
            return
        who = self.annotations.setdefault(item_id, {})
        if label is None:
            who.pop(annotator or self.session.annotator, None)
        else:
            who[annotator or self.session.annotator] = label

    # -- roles --------------------------------------------------------------------------------
    def served(self, item_id: str, role: str) -> None:
        """The session showed the item in this role (the latest last)."""
        roles = self.issued.setdefault(item_id, [])
        if role in roles:
            roles.remove(role)
        roles.append(role)  # the latest last: a label without a role is recorded in this one

    def served_as(self, item_id: str) -> str | None:
        """The role this session last showed the item in (None: never served)."""
        with self.session.lock:
            roles = self.issued.get(str(item_id))
            return roles[-1] if roles else None

    def role(self, item_id: str, query: str | None, action: str) -> str:
        """The role to record: the one the item was shown in, checked against what this
        session served (an audit label must come from an audit slot). An item still listed
        by a queue the person opened (`review()`, `focus()`) was shown in that queue's role,
        served one by one or not: a confirm of a row of the review table is a review."""
        issued = self.issued.get(item_id, [])
        current = self.roles.get(item_id) if action == "relabel" else None
        focus = self.session.serving.focuses.serving(item_id)
        listed = focus.role if focus is not None else None
        if query is None:
            return listed or current or (issued[-1] if issued else MANUAL)
        if query in issued or query in (current, listed, MANUAL):
            return query
        if issued:
            raise ValueError(f"item {item_id!r} was served as {', '.join(map(repr, issued))}, not as "
                             f"{query!r}: a label records the role its item was shown in")
        raise ValueError(f"item {item_id!r} was never served by the queue, so it cannot be recorded "
                         f"as {query!r}; leave query=None to record it as {MANUAL!r}")

    def label_action(self, item_id: str) -> str:
        """"relabel" for an item that has a label; an overlap item's first label by this
        annotator is a "label" of its own, even when a teammate labeled it before."""
        if item_id in self.session.overlap_items:
            return "relabel" if self.session.annotator in self.annotations.get(item_id, {}) else "label"
        return "relabel" if item_id in self.labels else "label"

    def settled(self, item_id: str) -> bool:
        """Labeled or skipped, as far as this annotator goes (an overlap item: labeled by this
        annotator, or by two annotators already)."""
        if item_id in self.session.overlap_items:
            who = self.annotations.get(item_id, {})
            return self.session.annotator in who or len(who) >= 2 or item_id in self.skipped
        return item_id in self.labels or item_id in self.skipped

    def audit_ids(self) -> set[str]:
        """The audit labels, kept out of training (none when a test split measures accuracy)."""
        session = self.session
        if session.test is not None or not session.audit_every:
            return set()
        return set(self.audit)
