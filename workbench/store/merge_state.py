"""The record of a merge in progress (`_history/merging-<branch>.json`), and replaying it.

A merge writes this record before any of its events: the other side, the base, the
conflicts (and later their resolutions), and the labels it takes (`target`). Whatever comes
after is replayed from the record should the process die, never worked out again from a fold
of the two sides (which would give the later event, not the three-way result). While it
exists the branch's scope includes the other side (scope.py), and commit() completes the merge.
"""

from __future__ import annotations

import json

import pandas as pd

from workbench.store import files, fixes, graph


def conflicts(store) -> pd.DataFrame:
    """The items of the merge in progress that both sides changed, not yet resolved."""
    state = read(store)
    if state is None:
        return conflict_frame({})
    open_ = {i: c for i, c in state["conflicts"].items() if i not in state["resolved"]}
    return conflict_frame(open_)


def read(store) -> dict | None:
    """The record of this branch's merge in progress, or None."""
    try:
        return json.loads((graph.history_dir(store) / merging_name(store)).read_text())
    except FileNotFoundError:
        return None


def write(store, state: dict) -> None:
    """Record (or update) this branch's merge in progress, durably."""
    graph.history_dir(store).mkdir(exist_ok=True)
    files.write_durably(graph.history_dir(store), merging_name(store), json.dumps(state).encode())


def complete_writes(store, state: dict) -> None:
    """Write the events a recorded merge takes (its `target` labels), once: a merge that
    died after recording its state is finished from that state, never from a fold of
    the two sides (which would give the later event, not the three-way result)."""
    if "fixes" not in state:
        if "target" not in state:  # recorded by a workbench before 2026-12
            return
        store._view()  # the scope now includes their side
        theirs = graph.load(store, state["theirs"]).frontier
        state["fixes"] = fixes.fix_rows(store, state["target"], "merge",
                                        [theirs, graph.frontier(store, state["head"])])
        state["events"] = [r["event_id"] for r in state["fixes"]]
        write(store, state)  # the ids are fixed before any event is written
    fixes.write_rows(store, state["fixes"])


def merging_name(store) -> str:
    return f"merging-{store.current_branch}.json"  # a merge in progress


def conflict_frame(conflicts: dict) -> pd.DataFrame:
    """Conflicts (item -> base, ours, theirs) as rows, sorted by item."""
    rows = [{"item_id": i, **c} for i, c in sorted(conflicts.items())]
    return pd.DataFrame(rows, columns=["item_id", "base", "ours", "theirs"])
