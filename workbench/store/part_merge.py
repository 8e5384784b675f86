"""A three-way merge of one item's label when the label is made of parts (the spans of a
text, the boxes of an image): what both branches did to it, taken part by part.

A side's changes since the merge base are the parts it removed and the parts it added, taken
as edits: changes that overlap one another (directly, or through others) are one edit, so a
relabel (a removal and an addition in one place), a moved boundary or a moved box is one edit.
Two sides merge when every edit of one is either the same as an edit of the other or overlaps
none of the other's; the result keeps what both kept and adds what either added. What
"overlap" means is the kind of part's own (`span_changes.overlaps`, `box_changes.overlaps`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

Overlaps = Callable[[Hashable, Hashable], bool]


def edits(was: set, now: set, overlaps: Overlaps) -> list[frozenset]:
    """A side's changes, `(part, "+" or "-")`, grouped into edits: the changes that overlap
    one another, directly or through others."""
    changes = [(p, "-") for p in was - now] + [(p, "+") for p in now - was]
    grouped: list[set] = []
    for change in changes:
        joined = [e for e in grouped if any(overlaps(change[0], other) for other, _ in e)]
        for e in joined:
            grouped.remove(e)
        grouped.append(set().union({change}, *joined))
    return [frozenset(e) for e in grouped]


def merge_parts(was: set, mine: set, their: set, overlaps: Overlaps) -> set | None:
    """The parts of the merged label, or None for a conflict: an edit of one side that
    overlaps a different edit of the other (an edit both sides made counts once)."""
    our_edits, their_edits = edits(was, mine, overlaps), edits(was, their, overlaps)
    for edit in our_edits:
        if edit in their_edits:
            continue
        if any(overlaps(a, b) for other in their_edits if other not in our_edits
               for a, _ in edit for b, _ in other):
            return None
    return (was & mine & their) | (mine - was) | (their - was)
