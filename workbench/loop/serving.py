"""Serving items: what the person is shown next, from which queue, and with which suggestion.

Queues opened on request (a review, a spot check, an adjudication, a selection on the map:
`workbench.loop.focus`) come first, the last opened first; then the strategy's ranked queue
(`workbench.loop.ranking`). An item served is claimed (`workbench.store.claims`), so that no
other session on the store shows it at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable

from workbench.learn.queue import AUDIT, QueueItem
from workbench.loop.focus import Focuses
from workbench.loop.review import REVIEW


class Serving:
    """The queues of one session and what they serve."""

    def __init__(self, session):
        self.session = session
        self.focuses = Focuses()  # queues shown on request, before the ranked one
        self.queue = None  # the ranked queue (workbench.learn.queue), set once the session has state

    def peek(self, k: int = 1) -> list[QueueItem]:
        """The next `k` items to label, in queue order, without consuming them.

        The items are claimed for this session: no other session on the store is served
        them until they are labeled or released (see `release`).
        """
        session = self.session
        session.check_open(writing=False)
        ids, ranker = session.pool.item_ids, session.ranker
        out: list[QueueItem] = []
        with session.lock, session.claims.claiming() as taken:
            # after reading the claims: an item is seen claimed or labeled (a labeler stamps
            # the log before it lets the item go, so the quick look sees its label)
            session.actions.sync_locked(quick=True)
            self.respread_cold_start()
            blocked = lambda item: self.blocked(item, taken)  # noqa: E731
            for focus in self.focuses.in_order():
                for item in focus.pending():
                    if len(out) >= k:
                        break
                    if not blocked(item) and item not in {q.item_id for q in out}:
                        out.append(self.focus_item(focus, item))
            done = lambda p: self.is_done(ids[p])  # noqa: E731
            if len(out) < k:
                for position, role, score in self.queue.upcoming(done, lambda p: blocked(ids[p])):
                    if ids[position] in {q.item_id for q in out}:
                        continue
                    out.append(ranker.queue_item(position, role, score))
                    if len(out) >= k:
                        break
            session.claims.hold(q.item_id for q in out)
            for q in out:
                session.item_state.served(q.item_id, q.strategy)
        return out

    def next(self) -> QueueItem | None:
        items = self.peek(1)
        return items[0] if items else None

    def release(self, item_ids: Iterable[str]) -> None:
        """Let other sessions be served these items again (this one no longer shows them)."""
        with self.session.lock:
            self.session.claims.release(str(i) for i in item_ids)

    def suggest(self, item_id) -> tuple[object, float] | tuple[None, None]:
        """The model's guess for an item and its probability; for an item waiting in a queue
        that carries its own suggestions (a review: the models that never saw its label),
        that queue's, so that every number on its card comes from one computation."""
        session = self.session
        with session.lock:
            focus = self.focuses.serving(str(item_id))
            if focus is not None and str(item_id) in focus.suggestions:
                return focus.suggestions[str(item_id)]
        model = session.rounds.model
        if model is None:
            return None, None
        return session.ranker.suggest(model, session.pool.position(item_id))

    def is_done(self, item_id: str) -> bool:
        """Whether this session has nothing more to ask about the item: it is labeled or
        skipped (an overlap item: labeled by this annotator, or by two annotators already),
        and no queue opened on request waits to show it."""
        if self.focuses.is_pending(item_id):
            return False  # to be shown (a review asks about labeled items again)
        return self.session.item_state.settled(item_id)

    def blocked(self, item_id: str, taken: dict) -> bool:
        """Whether another open session is showing the item now (an overlap item may be
        shown to two annotators, but not to two sessions of one)."""
        holders = taken.get(item_id)
        if not holders:
            return False
        if item_id in self.session.overlap_items:
            return len(holders) >= 2 or self.session.annotator in holders
        return True

    def focus(self, item_ids, *, role: str = "review", reasons: dict | None = None,
              suggestions: dict | None = None) -> None:
        """Show these items next, in this role, each once, before the ranked queue: labeling
        one records the role; labeled items are shown again. Queues opened on request compose
        (see `workbench.loop.focus`): this one starts at once, and one opened before keeps its
        items and resumes when this one is done or cleared; a queue of the same role is
        replaced. `suggestions`: item -> (class, probability) to show instead of the model's
        (a review shows what the models that never saw the item's label say)."""
        session = self.session
        if role == AUDIT:  # the random sample that measures accuracy: chosen by the queue alone
            raise ValueError(f"role {AUDIT!r} is the queue's random sample, which measures accuracy; "
                             "items chosen by hand cannot join it: pick another role")
        ids = [str(i) for i in item_ids]
        for item in ids:
            session.pool.position(item)
        with session.lock:
            self.focuses.open(role, ids, reasons=reasons, suggestions=suggestions)
        session.emit("focus_changed")

    @property
    def queues(self) -> list[dict]:
        """The queues items are served from, in serving order, each with the number of items
        left in it: [{"queue": "review", "left": 55}, {"queue": "spot-check", "left": 20},
        {"queue": "diverse_margin", "left": 1600}] (the last: the strategy's ranked queue,
        every item not labeled or skipped)."""
        session = self.session
        with session.lock:
            out = [{"queue": f.role, "left": len(f.pending())} for f in self.focuses.in_order()]
            state = session.item_state
            n_done = len(state.labels) + len(state.skipped)
            out.append({"queue": session.strategy_name, "left": max(0, len(session.pool) - n_done)})
        return out

    def clear_queue(self, queue: str | None = None) -> list[str]:
        """Stop serving a queue opened on request ("review", "spot-check", "adjudication",
        ...; None: all of them); returns the names of the queues closed. Nothing is written:
        the items of a cleared queue are served by the strategy's queue as usual."""
        session = self.session
        with session.lock:
            closed = self.focuses.clear(queue)
            if queue == REVIEW or (queue is None and closed):
                session.reviewing.close()
        if closed:
            session.emit("focus_changed")
        return closed

    def focus_item(self, focus, item_id: str) -> QueueItem:
        position = self.session.pool.position(item_id)
        base = self.session.ranker.queue_item(position, focus.role, None)
        reason = focus.reasons.get(item_id) or f"{focus.role}: shown on request"
        fields = {**base.__dict__, "reason": reason}
        if item_id in focus.suggestions:
            fields["suggestion"], fields["confidence"] = focus.suggestions[item_id]
        return QueueItem(**fields)

    def respread_cold_start(self) -> None:
        """Called under the lock before serving: the cold start was spread over the pool's
        own features while the representation was learned; once it is ready, and while no
        model is, spread it over the representation (items already shown keep their role)."""
        session = self.session
        if session.rounds.model is None and session.ranker.cold_start_waits and session.inputs.ready():
            self.queue = session.ranker.cold_start_queue()
