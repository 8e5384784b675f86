"""Finishing, on open, what a killed process left half done on a branch.

A merge, a revert and a restore each record what they will write before writing any of it
(merge_state.py, reverting.py); this replays such a record: the events it names that are not
in the log yet, then the commit if it was not made. A record whose commit was made is
dropped. With no record (the usual case) no lock is taken, so opening never waits.
"""

from __future__ import annotations

import json

from workbench.store import committing, files, fixes, graph, merge_state, refs, reverting


def finish_interrupted(store) -> None:
    """On open: finish what a killed process left half done on this branch. A merge
    completes its writes (and commits when it had no conflicts to wait for), a revert or
    restore writes its events and commits; a record whose commit was made is dropped."""
    records = (merge_state.merging_name(store), reverting.pending_name(store))
    if not any((graph.history_dir(store) / name).exists() for name in records):
        return  # the usual case: no lock taken, so opening never waits for a merge
    with store._lock, files.locked(refs.lock_path(store)):
        head = refs.head_id(store)
        state = merge_state.read(store)
        if state is not None and "head" in state:
            if head != state["head"] and state["theirs"] in graph.ancestors(store, head):
                (graph.history_dir(store) / merge_state.merging_name(store)).unlink()  # committed
            else:
                merge_state.complete_writes(store, state)
                if not state["conflicts"]:
                    committing.commit_locked(store, state["message"], store.annotator)
        try:
            plan = json.loads((graph.history_dir(store) / reverting.pending_name(store)).read_text())
        except FileNotFoundError:
            return
        if plan["head"] == head:  # its commit was not made yet
            fixes.write_rows(store, plan["fixes"])
            if store._view().changes():
                committing.commit_locked(store, plan["message"], store.annotator)
        (graph.history_dir(store) / reverting.pending_name(store)).unlink()
