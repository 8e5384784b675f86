"""Revert and restore: taking back one commit's changes, or making the labels equal to a
commit's, as new events and a commit.

The plan (`_history/pending-<branch>.json`: the events to write and the message) is recorded
first, so a process killed anywhere in between leaves either nothing or a plan that the next
open finishes (recovery.py).
"""

from __future__ import annotations

import json

from workbench.store import committing, diffing, files, fixes, graph, refs
from workbench.store.errors import RESTORE, StoreError
from workbench.store.graph import Commit


def revert(store, ref: str, message: str | None = None) -> Commit:
    """Take back one commit's changes (against its first parent) with new events, and
    commit that. Refused when an item it changed has changed again since."""
    with store._lock, files.locked(refs.lock_path(store)):
        committing.require_clean(store, "revert")
        commit = refs.rev(store, ref)
        parent = commit.parents[0] if commit.parents else None
        back = diffing.changes(store, graph.frontier(store, parent), commit.frontier)
        if not back:
            raise StoreError(f"commit {commit.short} changed no labels; nothing to revert")
        view = store._view()
        moved = sorted(i for i, (_, after) in back.items() if view.label(i) != after)
        if moved:
            raise StoreError(f"cannot revert {commit.short}: {len(moved)} of its items changed "
                             f"again since ({', '.join(moved[:5])}{' ...' if len(moved) > 5 else ''}"
                             "); use ", RESTORE, " to make the labels equal to a commit")
        targets = {item: before for item, (before, _) in back.items()}
        return _fix_and_commit(store, targets, "revert", [graph.frontier(store, parent)],
                               message or f"Revert {commit.short}: {commit.message}")


def restore(store, ref: str, message: str | None = None) -> Commit:
    """Make this branch's labels equal to a commit's, with new events, and commit that."""
    with store._lock, files.locked(refs.lock_path(store)):
        committing.require_clean(store, "restore")
        commit = refs.rev(store, ref)
        change = diffing.changes(store, commit.frontier, None)
        if not change:
            raise StoreError(f"the labels are already those of {commit.short}; nothing to "
                             "restore")
        return _fix_and_commit(store, {item: before for item, (before, _) in change.items()},
                               "restore", [commit.frontier],
                               message or f"Restore {commit.short}: {commit.message}")


def _fix_and_commit(store, target: dict, source: str, origins: list[dict], message: str) -> Commit:
    """Revert and restore: write the events that make the labels `target`, and commit.
    The plan is recorded first, so a process killed anywhere in between leaves either
    nothing or a plan that the next open finishes (`recovery.finish_interrupted`)."""
    rows = fixes.fix_rows(store, target, source, origins)
    plan = {"head": refs.head_id(store), "message": message, "fixes": rows, "source": source}
    files.write_durably(graph.history_dir(store), pending_name(store), json.dumps(plan).encode())
    fixes.write_rows(store, rows)
    commit = committing.commit_locked(store, message, store.annotator)
    (graph.history_dir(store) / pending_name(store)).unlink(missing_ok=True)
    return commit


def pending_name(store) -> str:
    return f"pending-{store.current_branch}.json"  # a revert or restore's plan
