"""Making a commit: recording a branch's current labels as a new state of its history.

Nothing is copied: a commit records the frontier of the events in the branch's scope, its
parents, who, when and why, and what it holds (`n_labels`, `labels_hash`). Its file is
written before the branch's ref moves to it, so a crash leaves the branch on its old head.
During a merge a commit completes it, once every conflict is resolved, with the other side as
its second parent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from workbench.store import clock, diffing, files, graph, merge_state, refs, views
from workbench.store.errors import ABORT_MERGE, RESOLVE, StoreError
from workbench.store.graph import Commit


def status(store) -> dict:
    """Where this branch stands: its head, how many labels changed since, a merge."""
    with store._lock:
        head = refs.head_id(store)
        merging = merge_state.read(store)
        return {"branch": store.current_branch, "head": head[:7] if head else None,
                "uncommitted": len(store._view().changes()),
                "merging": None if merging is None else merging["theirs"][:7],
                "conflicts": len(merge_state.conflicts(store))}


def commit(store, message: str, author: str | None = None) -> Commit:
    """Record the current labels of this branch as a commit (no copy of them is written).
    During a merge, this completes it once every conflict is resolved."""
    if not isinstance(message, str) or not message.strip():
        raise StoreError(f"a commit needs a message (a non-empty str), got {message!r}")
    author = author or store.annotator
    with store._lock, files.locked(refs.lock_path(store)):
        return commit_locked(store, message.strip(), author)


def commit_locked(store, message: str, author: str) -> Commit:
    """commit(), for a caller that holds the handle's lock and the history lock."""
    merging = merge_state.read(store)
    if merging is not None:
        merge_state.complete_writes(store, merging)  # a merge another process left half written
    view = store._view()
    parents = [p for p in (refs.head_id(store),) if p]
    if merging is not None:
        open_ = sorted(set(merging["conflicts"]) - set(merging["resolved"]))
        if open_:
            raise StoreError(f"a merge of {merging['theirs'][:7]} is in progress with "
                             f"{len(open_)} unresolved conflicts ({', '.join(open_[:5])}"
                             f"{' ...' if len(open_) > 5 else ''}); resolve each with ", RESOLVE,
                             ", or ", ABORT_MERGE)
        parents.append(merging["theirs"])
    changes = view.changes()
    if not changes and merging is None:
        raise StoreError(f"nothing to commit on branch {store.current_branch!r}: the labels are "
                         f"those of {parents[0][:7] if parents else 'the empty store'}")
    frontier = dict(store._frontier)
    for writer, count in store._local_counts.items():
        frontier[writer] = max(frontier.get(writer, 0), count)
    commit = _write_commit(store, parents, author, message, view.n_labels,
                           view.labels_hash, changes, frontier)
    if merging is not None:
        (graph.history_dir(store) / merge_state.merging_name(store)).unlink(missing_ok=True)
    view.mark()
    store._scope_key, store._frontier = (commit.id, None), frontier
    return commit


def _write_commit(store, parents, author, message, n_labels, labels_hash, changes,
                  frontier) -> Commit:
    counts = {"added": 0, "changed": 0, "removed": 0}
    for was, now in changes.values():
        counts["added" if was is None else "removed" if now is None else "changed"] += 1
    body = {"parents": list(parents), "branch": store.current_branch, "author": author,
            "time": clock.wall_clock().isoformat(timespec="microseconds"),
            "message": message, "n_labels": n_labels, "labels_hash": labels_hash,
            **counts, "frontier": dict(sorted(frontier.items()))}
    commit_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:40]
    commit = Commit(id=commit_id, **{**body, "parents": tuple(parents)})
    folder = graph.history_dir(store) / "commits"
    folder.mkdir(parents=True, exist_ok=True)
    files.write_durably(folder, f"{commit_id}.json", json.dumps(asdict(commit)).encode())
    refs.set_ref(store, "heads", store.current_branch, commit_id)  # only now is the commit on the branch
    graph.cache(store)[commit_id] = commit
    return commit


def snapshot(store, frontier: dict, parents: list[str], message: str) -> Commit:
    """Commit the labels of a frontier on this branch (a clone's starting point)."""
    with store._lock, files.locked(refs.lock_path(store)):
        labeled = views.labels(diffing.view_at(store, frontier))
        commit = _write_commit(store, parents, store.annotator, message, len(labeled),
                               views.labels_hash(labeled.index, labeled["label"]), {},
                               frontier)
    store._view()
    return commit


def require_clean(store, what: str) -> None:
    changes = store._view().changes()
    if changes:
        raise StoreError(f"cannot {what} with {len(changes)} uncommitted changes on branch "
                         f"{store.current_branch!r} ({', '.join(sorted(changes)[:5])}"
                         f"{' ...' if len(changes) > 5 else ''}); commit them first")
