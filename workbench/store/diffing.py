"""Labels at a point in history, and how they differ between two points.

A point is a frontier (a commit's; for "now", this branch's scope), and the labels at it are
the fold of the events inside it (views.py). Both are computed on the log's cached integer
keys (`views.Keys`), and a diff folds only the items whose events differ between its two
points: everything else is equal anyway.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from workbench.store import blame, box_changes, refs, span_changes, views


def labels(store, at: str | None = None) -> pd.Series:
    """item_id -> label: the labels now on this branch (`at=None`), or at a commit."""
    with store._lock:
        view = store._view().frame() if at is None else view_at(store, refs.rev(store, at).frontier)
        return views.label_series(view)


def current_labels_at(store, at: str) -> pd.DataFrame:
    """Like `current_labels()`, at a commit: who labeled each item, when, why."""
    with store._lock:
        return views.labels(view_at(store, refs.rev(store, at).frontier))


def diff(store, a: str, b: str | None = None) -> pd.DataFrame:
    """How labels differ from `a` to `b` (None: the current, uncommitted state): one row
    per item whose label differs (`change`: added, removed or changed), with who made
    the change, when, its source and the role the item was shown in."""
    with store._lock:
        fa = refs.rev(store, a).frontier
        fb = None if b is None else refs.rev(store, b).frontier
        return diff_between(store, fa, fb)


def diff_between(store, fa: dict, fb: dict | None) -> pd.DataFrame:
    columns = ["item_id", "before", "after", "change", "annotator", "time", "source", "query",
               "event_id"]
    log, pos_a, pos_b, keys = _labels_between(store, fa, fb)
    # Compare item by item on integer positions; only the labels of the deciding events
    # are read (a million-row label column is never converted).
    at_a = np.full(len(keys._items), -1)
    at_b = at_a.copy()
    at_a[keys.item[pos_a]], at_b[keys.item[pos_b]] = pos_a, pos_b
    touched = np.flatnonzero((at_a >= 0) | (at_b >= 0))
    sides = []
    for at in (at_a[touched], at_b[touched]):
        label = np.full(len(at), None, dtype=object)
        label[at >= 0] = log["label"].iloc[at[at >= 0]].to_numpy(dtype=object)
        sides.append(label)
    was, now = sides
    changed = np.flatnonzero(was != now)
    was, now = was[changed], now[changed]
    ra, rb = at_a[touched[changed]], at_b[touched[changed]]
    who = blame.trace(store, log.iloc[np.where(rb >= 0, rb, ra)].reset_index(drop=True))  # who changed it
    frame = who[["item_id", *columns[4:]]].copy()
    frame["change"] = np.where(ra < 0, "added", np.where(rb < 0, "removed", "changed"))
    frame["before"] = pd.Series(was, dtype=object)  # None stays None, not NaN
    frame["after"] = pd.Series(now, dtype=object)
    return frame[columns].sort_values("item_id", ignore_index=True)


def set_classes(value) -> list[str] | None:
    """The classes of a multi-label label (a JSON list of class names), None for any other."""
    if not (isinstance(value, str) and value.startswith("[")):
        return None
    try:
        names = json.loads(value)
    except ValueError:
        return None
    return [str(c) for c in names] if isinstance(names, list) else None


def inside(before, after) -> str:
    """What changed inside a multi-label item's set (labels that are JSON lists of classes;
    None: no label): "+odd -even"; inside a document's span list: "span 12-19 PER -> ORG,
    +span 0-5 PER" (span_changes.inside); inside an image's box list: "box 12,30 20x24 3 -> 5,
    +box 40,8 16x20 7" (box_changes.inside); "" for any other label."""
    boxes = box_changes.inside(before, after)  # first: a bare list of boxes is a JSON list too
    if boxes is not None:
        return boxes
    was, now = ([] if v is None else set_classes(v) for v in (before, after))
    if was is None or now is None:
        return span_changes.inside(before, after) or ""
    return " ".join([*(f"+{c}" for c in now if c not in was), *(f"-{c}" for c in was if c not in now)])


def merge_sets(base, ours, theirs, classes: list[str] | None = None) -> str | None:
    """The three-way merge of a multi-label item's set (labels that are JSON lists): every
    class either side added or removed since `base`, the rest as in `base`, in the order of
    `classes` (the store's class names). Two sides never disagree about one class (each
    flips it from what `base` had, or leaves it), so this always merges; None when a value is
    not a set label (or missing: a label given on both sides to an unlabeled item, or one
    side removing it, stays a conflict)."""
    sets = [set_classes(value) for value in (base, ours, theirs)]
    if any(s is None for s in sets):
        return None
    was, mine, their = (set(s) for s in sets)
    merged = (mine & their) | (mine - was) | (their - was)  # kept by both, or added by either
    order = {name: i for i, name in enumerate(classes or [])}
    return json.dumps(sorted(merged, key=lambda c: (order.get(c, len(order)), c)), ensure_ascii=False)


def changes(store, fa: dict, fb: dict | None) -> dict[str, tuple]:
    """item -> (label at fa, label at fb) for every item whose label differs."""
    frame = diff_between(store, fa, fb)
    return dict(zip(frame["item_id"], zip(frame["before"], frame["after"])))


def _labels_between(store, fa: dict, fb: dict | None) -> tuple:
    """The log, and the positions in it of the events that decide each labeled item at
    frontier `fa` and at `fb` (None: this branch's scope), for the items whose events
    differ between the two: everything else is equal anyway. Also the log's Keys."""
    log = store._all_events()
    keys = log_keys(store, log)
    in_a = views.frontier_mask(log, fa, keys)
    if fb is None:
        store._view()
        in_b = np.zeros(len(log), dtype=bool)
        in_b[log.index.get_indexer(store._scope_log().index)] = True
    else:
        in_b = views.frontier_mask(log, fb, keys)
    differs = np.zeros(len(keys._items), dtype=bool)  # a mask, not np.unique: no sort
    differs[keys.item[in_a != in_b]] = True
    near = differs[keys.item]
    labeling = views.isin(log["action"], views.LABELING)
    sides = []
    for inside in (in_a, in_b):
        scope = near & inside
        undone = _undone(log, scope)
        winners = views.latest_positions(log, scope & views.effective_mask(log, undone), keys)
        sides.append(winners[labeling[winners]])
    return log, sides[0], sides[1], keys


def view_at(store, frontier: dict) -> pd.DataFrame:
    """The state of every item at a frontier (like `views.latest(views.as_of(...))`, on
    the log's cached Keys: no column of the log is copied)."""
    log = store._all_events()
    keys = log_keys(store, log)
    inside = views.frontier_mask(log, frontier, keys)
    undone = _undone(log, inside)
    positions = views.latest_positions(log, inside & views.effective_mask(log, undone), keys)
    return log.iloc[positions].set_index("item_id")[views.VIEW_COLUMNS]


def log_keys(store, log: pd.DataFrame) -> views.Keys:
    """The Keys of the whole log, extended as it grows (the log is append-only)."""
    keys = getattr(store, "_log_keys", None)
    if keys is None or keys.n > len(log):
        keys = views.Keys(log)
    store._log_keys = keys.extend(log)
    return keys


def _undone(log: pd.DataFrame, mask: np.ndarray) -> set[str]:
    """The event ids that the undo events among the masked rows take back (read from those
    few rows: converting a million-row string column costs a tenth of a second)."""
    return set(log["target"].iloc[np.flatnonzero(mask & (log["action"] == "undo").to_numpy())])
