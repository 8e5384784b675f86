"""Queues of items shown on request, in front of the strategy's ranked queue: a review of
suspected mislabels, the spot check of a batch of suggestions, an adjudication, a selection
on the data map.

Several can be open at once, and they compose like a stack: the queue opened last is served
first (what the person just asked for starts at once), and the ones opened before keep their
items and resume when it is done, until every item in them is done (labeled, confirmed,
skipped, deferred) or they are cleared; the strategy's queue comes after them all. Opening a
queue of a role that is open already replaces it, in front (a second `review()` ranks the
review again). An item done in one queue is done in every queue that holds it, and an undo
brings it back to all of them.

Not thread-safe on its own: the session calls it under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Focus:
    """One queue of items shown on request, in one role, with the reason and the suggestion
    to show for each (a review shows what the models that never saw the label say)."""

    role: str
    items: list[str]
    reasons: dict[str, str] = field(default_factory=dict)
    suggestions: dict[str, tuple] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def __post_init__(self):
        self.members = set(self.items)

    def reorder(self, items: list[str]) -> None:
        """Serve these items in this order from now on (a review ranked again)."""
        self.items = list(dict.fromkeys(items))
        self.members = set(self.items)

    def pending(self) -> list[str]:
        return [i for i in self.items if i not in self.done]

    def holds(self, item_id: str) -> bool:
        """Whether the item is still to be shown in this queue."""
        return item_id in self.members and item_id not in self.done


class Focuses:
    """The open on-request queues, in serving order."""

    def __init__(self):
        self._open: list[Focus] = []

    def open(self, role: str, items: list[str], *, reasons: dict | None = None,
             suggestions: dict | None = None) -> Focus:
        focus = Focus(role, list(dict.fromkeys(items)), dict(reasons or {}), dict(suggestions or {}))
        self._open = [focus] + [f for f in self._open if f.role != role]
        return focus

    def get(self, role: str) -> Focus | None:
        return next((f for f in self._open if f.role == role), None)

    def clear(self, role: str | None = None) -> list[str]:
        """Close the queue of this role (every queue: None); returns the roles closed."""
        closed = [f.role for f in self._open if role is None or f.role == role]
        self._open = [f for f in self._open if f.role not in closed]
        return closed

    def in_order(self) -> list[Focus]:
        """The queues with items left, in serving order. A finished queue stays open (and
        served nothing) until it is cleared or replaced, so that an undo brings its items back."""
        return [f for f in self._open if f.pending()]

    def serving(self, item_id: str) -> Focus | None:
        """The first queue that still has the item to show."""
        return next((f for f in self._open if f.holds(item_id)), None)

    def is_pending(self, item_id: str) -> bool:
        return self.serving(item_id) is not None

    def mark_done(self, item_id: str) -> None:
        for focus in self._open:
            if item_id in focus.members:
                focus.done.add(item_id)

    def bring_back(self, item_ids) -> None:
        """An undo: these items are to be shown again where they were."""
        for focus in self._open:
            focus.done.difference_update(item_ids)

    def __bool__(self) -> bool:
        return bool(self._open)
