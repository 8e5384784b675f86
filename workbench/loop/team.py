"""The team's view of a shared store: who labeled an item and when, where annotators
disagree, how well they agree, and one open session per person and store in a process.

Several sessions may share one store (two notebooks, two people): each picks up the others'
labels within about a second (`workbench.loop.watch`) and never serves an item another one is
showing (`workbench.store.claims`).
"""

from __future__ import annotations

import os
import weakref

import pandas as pd

from workbench.data.tasks import SPANS, is_parts
from workbench.loop.agreement import ADJUDICATION, agreement

# The open session of each (store, branch, annotator) in this process: re-running a notebook
# cell makes a new session, and the one it replaces must stop claiming items and polling.
_OPEN: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def replace_open(session) -> None:
    """Make `session` the open one of its store, branch and annotator, closing the one it
    replaces (a notebook cell run again)."""
    key = (os.path.realpath(session.store.path), session.store.current_branch, session.annotator)
    replaced = _OPEN.get(key)
    if replaced is not None:
        replaced.close(reason="replaced by a newer Session on the same store and annotator",
                       wait=False)
    _OPEN[key] = session


class Team:
    """Blame, agreement and adjudication for one session's store."""

    def __init__(self, session):
        self.session = session

    def blame_text(self, item_id: str) -> str | None:
        """"labeled 3 by ann, 2 days ago, in a1b2c3d" for a labeled item; None otherwise."""
        session = self.session
        item_id = str(item_id)
        with session.lock:
            if item_id not in session.item_state.labels or session.at is not None:
                return None
            line = session.store.blame_line(item_id)
            value = session.item_state.labels[item_id]
        if line is None:
            return None
        label = line["label"]
        if is_parts(session) and str(value) == str(label):  # words, not the stored JSON
            label = parts_words(session.task, value)
        where = f"in {line['commit']}" if line["commit"] else "not committed yet"
        source = "" if line["source"] in ("human", None) else f" ({line['source']})"
        return f"labeled {label} by {line['annotator']}{source}, {ago(line['time'])}, {where}"

    def adjudicate(self) -> pd.DataFrame:
        """Show the items whose annotators disagree next (an adjudication queue); returns
        them. An adjudication is a label like any other, recorded in the role "adjudication"."""
        table = agreement(self.session.store.events(), task=self.session.task).disagreements
        reasons = {row.item_id: "adjudication: " + ", ".join(f"{who} said {label}" for who, label
                                                               in sorted(row.labels.items()))
                   for row in table.itertuples()}
        self.session.serving.focus(table["item_id"], role=ADJUDICATION, reasons=reasons)
        return table

    def agreement(self):
        """Agreement between this store's annotators (see workbench.loop.agreement)."""
        return agreement(self.session.store.events(), task=self.session.task)


def parts_words(task: str, parts) -> str:
    """A list of spans or boxes as the widget says it: "2 boxes: 1, 0", "no spans"."""
    kind, many = ("span", "spans") if task == SPANS else ("box", "boxes")
    if not len(parts):
        return f"no {many}"
    return f"{len(parts)} {kind if len(parts) == 1 else many}: {', '.join(str(p.label) for p in parts)}"


def ago(when) -> str:
    """A time as people say it: "just now", "5 minutes ago", "2 days ago"."""
    seconds = max(0.0, (pd.Timestamp.now(tz="UTC") - pd.Timestamp(when)).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"
