"""Fix events: the new events that make a branch's labels what a target says.

Revert, restore and merge change labels only by writing events: nothing is ever deleted, and
every step can itself be taken back. Each fix names the event whose label it copies
(`target`), so blame and diff still name the person who gave the label. Fixes are minted
(with their ids) into a record before any is written, so writing a record twice writes each
event once.
"""

from __future__ import annotations

import uuid

from workbench.store import views


def write_rows(store, rows: list[dict]) -> None:
    """Write those of these fix events that are not in the log yet (ids are minted in the
    plan, so writing a plan twice writes each event once)."""
    store._refresh()  # another handle may have written them: read the log first
    missing = [r for r in rows if store._find(r["event_id"]) is None]
    if missing:
        store.append_many(missing, source=missing[0]["source"])


def fix_rows(store, target: dict, source: str, origins: list[dict]) -> list[dict]:
    """Events that make each item's label what `target` says (None: no label), for the
    items where the fold of this branch's scope says otherwise. Each names the event it
    copies: the item's event at the first of the `origins` (frontiers) that has that label."""
    view = store._view()
    log = store._all_events()
    near = log[views.isin(log["item_id"], target)]
    tops = [views.latest(views.as_of(near, f)) for f in origins]
    rows = []
    for item, label in sorted(target.items()):
        if view.label(item) == label:
            continue
        copied = next((top.at[item, "event_id"] for top in tops if item in top.index
                       and views._label(top.loc[item].to_dict()) == label), None)
        action = "remove" if label is None else ("relabel" if view.label(item) else "label")
        rows.append({"item_id": item, "label": label, "action": action, "source": source,
                     "query": source, "target": copied, "event_id": uuid.uuid4().hex})
    return rows
