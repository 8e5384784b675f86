"""Merge: bringing another branch's (or commit's) changes into this branch, three-way.

Every change only one side made since the two diverged (their merge base, by ancestry) is
taken; a multi-label item's set (a JSON list) that both sides changed is merged class by
class (`diffing.merge_sets`), a document's span list edit by edit where the two sides' edits do
not overlap (`span_changes.merge_spans`), an image's box list likewise (`box_changes.merge_boxes`,
boxes overlapping by IoU > 0); any other item both sides changed to different labels is a
conflict, and the merge waits until each is resolved (or the merge is aborted). Where a plain
fold of the union would not give the three-way result, the merge writes "merge" events that
do; what it will write is recorded before any of it (merge_state.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from workbench.store import (
    box_changes,
    committing,
    diffing,
    files,
    graph,
    merge_state,
    refs,
    span_changes,
    views,
)
from workbench.store.errors import ABORT_MERGE, CONFLICTS, StoreError
from workbench.store.graph import Commit
from workbench.store.meta import read_meta


@dataclass
class MergeResult:
    """What `merge` did: the commit it made (None while conflicts wait), how, and the
    conflicts: one row per item both sides changed to different labels."""

    commit: Commit | None
    fast_forward: bool
    taken: int                 # items whose label came from the other side
    conflicts: pd.DataFrame

    def __repr__(self) -> str:
        if self.commit is None:
            return (f"MergeResult(conflicts={len(self.conflicts)}: resolve each with "
                    f"store.resolve(item_id, label), then store.commit(message))")
        how = "fast-forward" if self.fast_forward else f"{self.taken} items taken"
        return f"MergeResult({self.commit.short}, {how})"


def merge(store, ref: str, message: str | None = None) -> MergeResult:
    """Bring another branch's (or commit's) changes into this branch. Every change only
    one side made is taken; an item both sides changed to different labels since they
    diverged is a conflict: the merge then waits, `conflicts()` lists them, `resolve()`
    settles each, and `commit()` completes it (or `abort_merge()` drops it)."""
    with store._lock, files.locked(refs.lock_path(store)):
        if merge_state.read(store) is not None:
            raise StoreError("a merge is in progress on this branch: resolve its conflicts (",
                             CONFLICTS, ") and commit, or ", ABORT_MERGE)
        if isinstance(ref, str) and ref == store.current_branch:
            raise StoreError(f"cannot merge branch {ref!r} into itself")
        theirs = refs.rev(store, ref)
        committing.require_clean(store, "merge")
        head = refs.head_id(store)
        if head is not None and theirs.id in graph.ancestors(store, head):
            raise StoreError(f"already up to date: {theirs.short} is part of {store.current_branch!r}")
        if head is None or head in graph.ancestors(store, theirs.id):  # nothing of ours to keep
            refs.set_ref(store, "heads", store.current_branch, theirs.id)
            return MergeResult(theirs, True, theirs.n_labels, merge_state.conflict_frame({}))
        base = graph.merge_base(store, head, theirs.id)
        fb, fo, ft = graph.frontier(store, base), graph.frontier(store, head), theirs.frontier
        items = _touched(store, fb, fo) | _touched(store, fb, ft)
        b, o, t = (_labels_for(store, f, items) for f in (fb, fo, ft))
        target, conflicts, taken = {}, {}, 0
        meta = read_meta(store.path)
        classes, sets = meta.get("classes"), meta.get("task") == "multi_label"
        spans, boxes = meta.get("task") == "spans", meta.get("task") == "boxes"
        for item in sorted(items):
            was, ours, their = b.get(item), o.get(item), t.get(item)
            if ours == their or their == was:
                target[item] = ours
            elif ours == was:
                target[item], taken = their, taken + 1
            elif sets and (merged := diffing.merge_sets(was, ours, their, classes)) is not None:
                # a multi-label set both sides changed: each class as the side that changed it
                target[item], taken = merged, taken + 1
            elif spans and (merged := span_changes.merge_spans(was, ours, their, classes)) is not None:
                # a document's span list both sides changed, at places that do not overlap
                target[item], taken = merged, taken + 1
            elif boxes and (merged := box_changes.merge_boxes(was, ours, their, classes)) is not None:
                # an image's box list both sides changed, at boxes that do not overlap
                target[item], taken = merged, taken + 1
            else:
                target[item] = ours  # kept until resolved
                conflicts[item] = {"base": was, "ours": ours, "theirs": their}
        # The one record of the merge, written before any of its events: everything after
        # it is replayed from it should the process die (see merge_state.complete_writes).
        state = {"theirs": theirs.id, "base": base, "head": head, "conflicts": conflicts,
                 "resolved": {}, "target": target,
                 "message": message or f"Merge {ref if isinstance(ref, str) else theirs.short} "
                                       f"({theirs.short}) into {store.current_branch}"}
        merge_state.write(store, state)
        merge_state.complete_writes(store, state)
        if conflicts:
            return MergeResult(None, False, taken, merge_state.conflicts(store))
        return MergeResult(committing.commit_locked(store, state["message"], store.annotator), False, taken,
                           merge_state.conflict_frame({}))


def resolve(store, item_id: str, label: str | None):
    """Settle a conflict of the merge in progress: the item's label becomes `label` (None:
    no label), as a new event of this branch."""
    with store._lock, files.locked(refs.lock_path(store)):
        state = merge_state.read(store)
        item_id = str(item_id)
        if state is None:
            raise StoreError("no merge is in progress on this branch; nothing to resolve")
        if item_id not in state["conflicts"]:
            raise StoreError(f"item {item_id!r} is not in conflict; the conflicts are "
                             f"{sorted(state['conflicts'])[:10]}")
        label = _check_resolution(store, label)
        current = diffing.labels(store).get(item_id)
        if label is None:
            event = store.append(item_id, None, action="remove", source="human", query="merge")
        else:
            event = store.append(item_id, str(label), action="relabel" if current else "label",
                                 source="human", query="merge")
        state["resolved"][item_id] = event.event_id
        merge_state.write(store, state)
        return event


def _check_resolution(store, label):
    """The label a resolution writes. A multi-label store's is a JSON list of its classes (what
    a session writes); a spans store's a span list of its labels (its JSON, or a list of
    [start, end, label]), written as the canonical `str(SpanList)`; a boxes store's a box list
    of its classes (its JSON, or a list of [x, y, w, h, label]), written as `str(BoxList)`. A
    StoreError naming the value otherwise, before anything is written."""
    meta = read_meta(store.path)
    if meta.get("task") == "boxes" and label is not None:
        classes = meta.get("classes")
        try:
            return box_changes.dump(box_changes.stored_boxes(label, classes))
        except ValueError as err:
            example = json.dumps({"v": 1, "boxes": [[12, 30, 20, 24, (classes or ["cat"])[0]]]},
                                 ensure_ascii=False)
            raise StoreError(f"this store holds box lists; {err}. Resolve with a list of "
                             f"[x, y, w, h, label] boxes (top-left corner, width and height in image "
                             f"pixels) of its classes {classes}, as its JSON (e.g. '{example}') or a "
                             "list") from None
    if meta.get("task") == "spans" and label is not None:
        classes = meta.get("classes")
        try:
            return span_changes.dump(span_changes.stored_spans(label, classes))
        except ValueError as err:
            example = json.dumps({"v": 1, "spans": [[0, 5, (classes or ["PER"])[0]]]}, ensure_ascii=False)
            raise StoreError(f"this store holds span lists; {err}. Resolve with a list of "
                             f"[start, end, label] spans of its labels {classes}, as its JSON "
                             f"(e.g. '{example}') or a list") from None
    if meta.get("task") != "multi_label" or label is None:
        return label
    classes = meta.get("classes") or []
    try:
        names = json.loads(label) if isinstance(label, str) else None
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) and n in classes for n in names):
        raise StoreError(f"this store holds multi-label sets: resolve with a JSON list of its classes "
                         f"{classes}, e.g. '[\"{classes[0] if classes else 'a'}\"]', got {label!r}")
    return label


def abort_merge(store) -> None:
    """Drop the merge in progress: its events are taken back (one undo each)."""
    with store._lock, files.locked(refs.lock_path(store)):
        state = merge_state.read(store)
        if state is None:
            raise StoreError("no merge is in progress on this branch")
        store._refresh()  # a fresh handle has not read the merge's events yet
        ids = [e for e in state.get("events", []) + list(state["resolved"].values())
               if e not in store._retracted and store._find(e) is not None]
        if ids:
            store.retract(ids)
        (graph.history_dir(store) / merge_state.merging_name(store)).unlink(missing_ok=True)
        store._view()


def _touched(store, fa: dict, fb: dict) -> set[str]:
    """Items with an event inside one frontier and not the other."""
    log = store._all_events()
    in_a, in_b = views.frontier_mask(log, fa), views.frontier_mask(log, fb)
    return set(log.loc[in_a != in_b, "item_id"].dropna())


def _labels_for(store, frontier: dict, items: set[str]) -> dict[str, str]:
    """item -> label at a frontier, for these items (unlabeled ones are absent)."""
    log = store._all_events()
    near = log[views.isin(log["item_id"], items)]
    return views.labels(views.latest(views.as_of(near, frontier)))["label"].to_dict()
