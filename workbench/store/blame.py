"""Who labeled what: blame, one item's blame line, an item's whole history, and tracing a
copied label back to the event it copies.

A label that a merge, revert or restore brought in is an event copying another (its
`target`): blame and diff follow such copies to the first event, so they name the person who
gave the label, not the merge. Blame also names the commit that introduced each label: the
oldest commit leading to HEAD whose frontier holds its event.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.store import graph, refs, views
from workbench.store.schema import PROVENANCE


def trace(store, rows: pd.DataFrame) -> pd.DataFrame:
    """Who and why for events (rows with annotator, time, source, query, event_id, target):
    a copy made by merge, revert or restore gets the fields of the event it copies, so
    blame and diff name the person, not the merge."""
    rows = rows.copy()
    copied = rows["source"].isin(PROVENANCE).to_numpy() & rows["target"].notna().to_numpy()
    if not copied.any():
        return rows
    fields = ["annotator", "time", "source", "query", "target"]
    log = store._all_events()
    originals = log[views.isin(log["event_id"], set(rows.loc[copied, "target"]))]
    lookup = originals.set_index("event_id")[fields]
    for _ in range(20):  # a copy of a copy...: follow each chain to its first event
        copied = rows["source"].isin(PROVENANCE).to_numpy() & rows["target"].notna().to_numpy()
        if not copied.any():
            break
        found = lookup.reindex(rows.loc[copied, "target"])
        known = found["annotator"].notna().to_numpy()
        at = rows.index[copied][known]
        rows.loc[at, "event_id"] = rows.loc[at, "target"].to_numpy()
        for column in fields:
            rows.loc[at, column] = found[column].to_numpy()[known]
        rows.loc[rows.index[copied][~known], "target"] = None  # not here: stop following
        more = set(rows.loc[at, "target"].dropna()) - set(lookup.index)
        if more:
            extra = log[views.isin(log["event_id"], more)].set_index("event_id")[fields]
            lookup = pd.concat([lookup, extra])
    return rows


def blame(store, item_ids=None) -> pd.DataFrame:
    """For each labeled item on this branch (or those given): its label, who gave it,
    when, the source (human, suggestion, import, merge...), the role the item was shown
    in, and the commit that introduced it (None while uncommitted). Labels a merge, revert
    or restore brought in are traced back to the event they copy. `confirmed_by` and
    `confirmed_at`: the review that last kept the label, while it stands (else None)."""
    columns = ["label", "annotator", "time", "source", "query", "commit", "event_id",
               "confirmed_by", "confirmed_at"]
    with store._lock:
        full = store._view().frame()
        full = full[full["action"].isin(views.LABELING).to_numpy()]
        if item_ids is not None:
            full = full[full.index.isin([str(i) for i in item_ids])]
        frame = trace(store, full)
        frame["commit"] = pd.Series(  # None while uncommitted (pandas would make it NaN)
            _introduced_in(store, full["writer"].to_numpy(), full["seq"].to_numpy()),
            index=frame.index, dtype=object)
        confirmed = store.confirmations().reindex(frame.index)
        frame["confirmed_by"] = confirmed["annotator"].astype(object).where(
            confirmed["annotator"].notna(), None)
        frame["confirmed_at"] = pd.to_datetime(confirmed["time"], utc=True)
        return frame[columns]


def blame_line(store, item_id: str) -> dict | None:
    """The blame of one item, cheaply (for the labeling widget): label, annotator, time,
    source, role and commit of the event that decides its label; None when unlabeled."""
    with store._lock:
        top = store._view().top(str(item_id))
        if views._label(top) is None:
            return None
        who = _provenance(store, top)
        commit = _introduced_in(store, np.array([top["writer"]]), np.array([top["seq"]]))[0]
        return {"label": top["label"], "annotator": who.get("annotator"),
                "time": pd.Timestamp(who.get("time")), "source": who.get("source"),
                "query": who.get("query"), "commit": commit}


def _introduced_in(store, writers: np.ndarray, seqs: np.ndarray) -> list:
    """For each event, the oldest commit leading to HEAD whose frontier holds it."""
    found = np.full(len(seqs), None, dtype=object)
    head = refs.head_id(store)
    if head is None:
        return list(found)
    cached = getattr(store, "_ancestry", None)
    if cached is None or cached[0] != head:  # parents first, kept until the head moves
        cached = (head, sorted((graph.load(store, c) for c in graph.ancestors(store, head)),
                               key=lambda c: (graph.generation(store, c.id), c.time, c.id)))
        store._ancestry = cached
    commits = cached[1]
    events = pd.DataFrame({"writer": writers, "seq": seqs})
    for commit in commits:
        inside = views.frontier_mask(events, commit.frontier)
        new = inside & (found == None)  # noqa: E711 - an object array of ids and None
        found[new] = commit.short
    return list(found)


def _provenance(store, row: dict) -> dict:
    """`trace` for one event (a dict)."""
    seen = 0
    while row.get("source") in PROVENANCE and row.get("target") and seen < 50:
        original = store._find(row["target"])
        if original is None:
            break
        row, seen = {**original, "item_id": row.get("item_id")}, seen + 1
    return row


def item_history(store, item_id: str) -> pd.DataFrame:
    """Every event on one item, on every branch, oldest first; `in_scope` says which
    ones this branch sees, `undone` which ones an undo in scope takes back."""
    with store._lock:
        store._view()
        log = store._all_events()
        rows = log[(log["item_id"] == str(item_id)).to_numpy()].sort_values(views.ORDER)
        scope = set(store._scope_log()["event_id"])
        rows = rows.assign(in_scope=rows["event_id"].isin(scope),
                           undone=rows["event_id"].isin(store._retracted))
        return rows.reset_index(drop=True)
