"""Views of the label log: pure folds over events, which never write.

An item's state is decided by its latest *effective* event, in the log's total order
(clock, writer, seq): a label, relabel, skip or remove that no undo retracts. Current labels
are that fold over the events in scope; "as of" a point is the same fold over the events up to
the point (a frontier: for each writer, how many of its events count), which is what label
history (commit, diff, checkout) is built on.

`labels_hash` summarises a set of (item_id, label) pairs: the sum, modulo 2**64, of a keyed
hash of each pair, twice with different keys (128 bits). A sum does not depend on order, so
two stores or two commits with the same labels agree, and it can be kept up to date one
changed item at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The order of events is causal, never the wall clock: `clock` is a hybrid logical clock (the
# writer's wall time, but never at or before any event the writer had seen when it wrote), so
# an event written after seeing another always sorts after it, whatever the machines' clocks
# say. `time` is the wall clock, for people to read. Ties (concurrent events, a batch sharing
# one clock) are broken by writer id, then by the writer's own sequence number.
ORDER = ["clock", "writer", "seq"]
EFFECTIVE = ("label", "relabel", "skip", "remove")  # the actions that decide an item's state
LABELING = ("label", "relabel")  # the effective actions that leave the item labeled
# A review that keeps a label: it carries the label it kept, changes no item's state (so
# roles, training, diff and merge ignore it), and can be undone like a label.
CONFIRM = "confirm"
CARRIES_LABEL = (*LABELING, CONFIRM)
UNDOABLE = (*EFFECTIVE, CONFIRM)
_HASH_KEYS = ("workbench-label1", "workbench-label2")  # pandas wants 16 characters
_MASK = (1 << 64) - 1
VIEW = ["label", "annotator", "time", "source", "query", "event_id"]
VIEW_COLUMNS = [*VIEW, "action", "writer", "seq", "target", "clock"]


def isin(column: pd.Series, values) -> np.ndarray:
    """`column.isin(values)` as a numpy mask, through pyarrow for the Arrow-backed strings
    pandas 3 uses (its own isin there goes value by value in Python: 1 s on a million rows)."""
    values = list(values)
    if not values:
        return np.zeros(len(column), dtype=bool)
    array = column.array
    if hasattr(array, "_pa_array"):
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.is_in(array._pa_array, value_set=pa.array(values, pa.string()))
        return found.to_numpy(zero_copy_only=False).astype(bool)
    return column.isin(values).to_numpy()


class Keys:
    """A log's columns as integer codes, computed once for several folds over it, and
    extended, not recomputed, as an append-only log grows (`extend`): factorizing a million
    item ids costs a quarter of a second, and history queries would pay it every time.
    Writer codes follow the writers' sorted order (ties in time are broken by writer name)."""

    def __init__(self, log: pd.DataFrame):
        self.n = 0
        self.writers = pd.Index([], dtype=object)
        self.writer = np.empty(0, dtype=np.int64)
        self._items = pd.Index([], dtype=object)  # item ids in first-seen order: code = position
        self.item = np.empty(0, dtype=np.int64)
        self.clock = np.empty(0, dtype=np.int64)
        self.seq = np.empty(0, dtype=np.int64)
        self.extend(log)

    def extend(self, log: pd.DataFrame) -> Keys:
        """Codes for the rows of `log` past the first `n` (which must be the rows coded so far)."""
        new = log.iloc[self.n:]
        if not len(new):
            return self
        writers = self.writers.append(pd.Index(pd.unique(new["writer"]), dtype=object)).unique()
        writers = writers.sort_values()
        remap = writers.get_indexer(self.writers)
        self.writer = np.concatenate([remap[self.writer], writers.get_indexer(new["writer"])])
        self.writers = writers
        codes = self._items.get_indexer(new["item_id"])
        unseen = codes < 0
        if unseen.any():
            fresh, uniques = pd.factorize(new["item_id"].to_numpy()[unseen])
            codes[unseen] = fresh + len(self._items)
            self._items = self._items.append(pd.Index(uniques, dtype=object))
        self.item = np.concatenate([self.item, codes])
        self.clock = np.concatenate([self.clock, _ticks(new["clock"])])
        self.seq = np.concatenate([self.seq, new["seq"].to_numpy()])
        self.n = len(log)
        return self


def frontier_mask(log: pd.DataFrame, frontier: dict[str, int], keys: Keys | None = None) -> np.ndarray:
    """Rows inside a frontier: each writer's first `frontier[writer]` events."""
    codes, writers = (keys.writer, keys.writers) if keys else pd.factorize(log["writer"])
    limits = np.array([frontier.get(w, 0) for w in writers] + [0], dtype=np.int64)
    return log["seq"].to_numpy() < limits[codes]  # code -1 (a missing writer) reads the 0


def retracted_ids(log: pd.DataFrame) -> set[str]:
    """Event ids that some undo in `log` targets."""
    return set(log.loc[(log["action"] == "undo").to_numpy(), "target"])


def effective_mask(log: pd.DataFrame, retracted: set[str], **equal: str) -> np.ndarray:
    """Rows that decide an item's state (label/relabel/skip, not undone), optionally only
    those whose columns equal the given values."""
    mask = isin(log["action"], EFFECTIVE) & ~isin(log["event_id"], retracted)
    for column, value in equal.items():
        mask &= (log[column] == value).to_numpy()
    return mask  # numpy masks: boolean Series indexing is slow on 1M rows


def latest(log: pd.DataFrame, retracted: set[str] | None = None) -> pd.DataFrame:
    """The latest effective event per item, indexed by item_id, sorted by (clock, writer, seq)."""
    if retracted is None:
        retracted = retracted_ids(log)
    rows = log.iloc[latest_positions(log, effective_mask(log, retracted))]
    return rows.set_index("item_id")[VIEW_COLUMNS]


def latest_positions(log: pd.DataFrame, mask: np.ndarray, keys: Keys | None = None) -> np.ndarray:
    """Row positions of the last masked event of each item in (clock, writer, seq) order,
    in that order. Works on integer codes with numpy and copies no column of the log: on a
    million events, several times faster than sorting the frame."""
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return rows
    keys = keys or Keys(log)
    rows = rows[np.lexsort((keys.seq[rows], keys.writer[rows], keys.clock[rows]))]
    return rows[~pd.Series(keys.item[rows]).duplicated(keep="last").to_numpy()]


def in_order(log: pd.DataFrame) -> pd.DataFrame:
    """The log sorted by (clock, writer, seq), on integer keys with numpy's lexsort."""
    if len(log) < 2:
        return log
    codes, _ = pd.factorize(log["writer"], sort=True)
    return log.iloc[np.lexsort((log["seq"].to_numpy(), codes, _ticks(log["clock"])))]


def as_of(log: pd.DataFrame, frontier: dict[str, int]) -> pd.DataFrame:
    """The events up to a point: for each writer, its first `frontier[writer]` events."""
    return log[frontier_mask(log, frontier)]


def labels(view: pd.DataFrame) -> pd.DataFrame:
    """Labeled items of a view, in the order they were labeled."""
    return view.loc[isin(view["action"], LABELING), VIEW]


def label_series(view: pd.DataFrame) -> pd.Series:
    """item_id -> label of the labeled items of a view, sorted by item_id."""
    return labels(view)["label"].sort_index().rename("label")


def pair_hashes(item_ids, labels_) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each (item_id, label) pair."""
    if len(item_ids) <= 64 and all(isinstance(v, str) for v in (*item_ids, *labels_)):
        # A few pairs (each event the view folds in, on the serving path): pandas' Series
        # machinery costs ~2 ms per call, hashing the strings directly ~0.05 ms, same values.
        few = np.array([f"{i}\x1f{v}" for i, v in zip(item_ids, labels_)], dtype=object)
        return tuple(pd.util.hash_array(few, hash_key=k, categorize=False) for k in _HASH_KEYS)
    pairs = pd.Series(item_ids, dtype=object).astype(str) + "\x1f" + pd.Series(
        labels_, dtype=object).astype(str).to_numpy()
    # Hashed as an object array, in C: pandas hashes its Arrow-backed text one Python object
    # at a time (4.2 s for a pool of 2,000,000 items against 1.3 s), to the same values.
    pairs = pairs.to_numpy(dtype=object)
    return tuple(pd.util.hash_array(pairs, hash_key=k, categorize=False) for k in _HASH_KEYS)


def labels_hash(item_ids, labels_) -> str:
    """The hash of a set of (item_id, label) pairs, as 32 hex digits (see the module doc)."""
    return _hex(*_sums(item_ids, labels_))


def _sums(item_ids, labels_) -> tuple[int, int]:
    if len(item_ids) == 0:
        return 0, 0
    a, b = pair_hashes(item_ids, labels_)
    return int(a.sum(dtype=np.uint64)), int(b.sum(dtype=np.uint64))  # numpy wraps mod 2**64


def _hex(a: int, b: int) -> str:
    return f"{a & _MASK:016x}{b & _MASK:016x}"


def skipped(view: pd.DataFrame) -> set[str]:
    return set(view.index[(view["action"] == "skip").to_numpy()])


class Latest:
    """`latest()` kept up to date as events arrive, cheaply: new events are folded into a
    small dict of changed items; the DataFrame is brought up to date only when a caller asks
    for all of it (`frame()`), while `top(item)` answers for one item at once. It also keeps
    the number of labeled items and their `labels_hash`, and, for `changes()`, each item's
    label as it was at the last `mark()`."""

    def __init__(self, log: pd.DataFrame, retracted: set[str], *, marked: dict | None = None):
        """`marked`: item -> its label at the mark (None: unlabeled) for items that changed
        since the mark before `log` was read; empty when the view starts at the mark."""
        self._frame = latest(log, retracted)
        self._changed: dict[str, dict | None] = {}  # item -> its new top event (None: no state)
        self._marked: dict[str, str | None] = dict(marked or {})
        labeled = labels(self._frame)
        self.n_labels = len(labeled)
        self._sums = _sums(labeled.index, labeled["label"])

    @property
    def labels_hash(self) -> str:
        return _hex(*self._sums)

    def top(self, item_id: str) -> dict | None:
        if item_id in self._changed:
            return self._changed[item_id]
        try:
            at = self._frame.index.get_loc(item_id)
        except KeyError:
            return None
        row = self._frame.iloc[at].to_dict()
        return {"item_id": item_id, **{k: (None if isinstance(v, float) and v != v else v)
                                       for k, v in row.items()}}

    def label(self, item_id: str) -> str | None:
        return _label(self.top(item_id))

    def fold(self, rows: list[dict], log, retracted: set[str]) -> None:
        """Apply new events (already counted in `retracted`); `log()` gives the events in
        scope, needed only when an undo uncovers the event below the one it retracts. The
        result does not depend on the order of `rows`."""
        for row in rows:
            item, old = row["item_id"], self.top(row["item_id"])
            new = old
            if row["action"] == "undo":
                if old is not None and old["event_id"] == row["target"]:
                    whole = log()
                    new = last_row(whole, effective_mask(whole, retracted, item_id=item))
            elif (row["action"] in EFFECTIVE and row["event_id"] not in retracted
                  and (old is None or _key(row) > _key(old))):
                new = row  # a confirm decides nothing: the label it keeps stays on top
            if new is not old:
                self._set(item, old, new)

    def _set(self, item: str, old: dict | None, new: dict | None) -> None:
        before, after = _label(old), _label(new)
        if item not in self._marked:
            self._marked[item] = before
        if before != after:
            a, b = self._sums
            if before is not None:
                da, db = pair_hashes([item], [before])
                a, b = a - int(da[0]), b - int(db[0])
                self.n_labels -= 1
            if after is not None:
                da, db = pair_hashes([item], [after])
                a, b = a + int(da[0]), b + int(db[0])
                self.n_labels += 1
            self._sums = (a & _MASK, b & _MASK)
        self._changed[item] = new

    def changes(self) -> dict[str, tuple[str | None, str | None]]:
        """item -> (label at the mark, label now), for the items whose label differs."""
        now = {item: self.label(item) for item in self._marked}
        return {item: (was, now[item]) for item, was in self._marked.items() if was != now[item]}

    def mark(self) -> None:
        """Start counting changes from here (a commit was made of this state)."""
        self._marked = {}

    def frame(self) -> pd.DataFrame:
        """The whole view, indexed by item_id, in (clock, writer, seq) order."""
        if self._changed:
            changed, self._changed = self._changed, {}
            kept = self._frame[~self._frame.index.isin(list(changed))]
            new = sorted((row for row in changed.values() if row is not None), key=_key)
            frame = pd.DataFrame(new, columns=["item_id", *VIEW_COLUMNS]).set_index("item_id")
            merged = pd.concat([kept, frame.astype(kept.dtypes.to_dict())])
            in_order = kept.empty or not new or _key(kept.iloc[-1]) <= _key(new[0])
            self._frame = merged if in_order else merged.sort_values(ORDER)
        return self._frame


def _label(top: dict | None) -> str | None:
    return top["label"] if top is not None and top["action"] in LABELING else None


def last_row(log: pd.DataFrame, mask: np.ndarray) -> dict | None:
    """The masked row latest in (clock, writer, seq), without copying or sorting the log."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return None
    clocks = _ticks(log["clock"])[rows]
    rows = rows[clocks == clocks.max()]
    if len(rows) > 1:  # a tie in clock (a batch shares one): the largest writer, then seq
        writers = log["writer"].iloc[rows].to_numpy()
        rows = rows[writers == writers.max()]
    best = rows[log["seq"].to_numpy()[rows].argmax()]
    return log.iloc[int(best)].to_dict()


def _key(row) -> tuple:
    return pd.Timestamp(row["clock"]), row["writer"], row["seq"]


def _ticks(clock: pd.Series) -> np.ndarray:
    """Clock values as integer microseconds, for lexsort."""
    return clock.to_numpy(dtype="datetime64[us]").astype(np.int64)
