"""Views of the label log: pure folds over events, which never write.

An item's state is decided by its latest *effective* event, in the log's total order
(time, writer, seq): a label, relabel or skip that no undo retracts. Current labels are that
fold over the whole log; "as of" a point is the same fold over the events up to the point
(a frontier: for each writer, how many of its events count), which is what label history
(commit, diff, checkout) is built on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ORDER = ["time", "writer", "seq"]
EFFECTIVE = ("label", "relabel", "skip")  # the actions that decide an item's state
VIEW = ["label", "annotator", "time", "source", "query", "event_id"]
VIEW_COLUMNS = [*VIEW, "action", "writer", "seq"]


def retracted_ids(log: pd.DataFrame) -> set[str]:
    """Event ids that some undo in `log` targets."""
    return set(log.loc[(log["action"] == "undo").to_numpy(), "target"])


def effective_mask(log: pd.DataFrame, retracted: set[str], **equal: str) -> np.ndarray:
    """Rows that decide an item's state (label/relabel/skip, not undone), optionally only
    those whose columns equal the given values."""
    mask = log["action"].isin(EFFECTIVE) & ~log["event_id"].isin(retracted)
    for column, value in equal.items():
        mask &= log[column] == value
    return mask.to_numpy()  # numpy masks: boolean Series indexing is slow on 1M rows


def latest(log: pd.DataFrame, retracted: set[str] | None = None) -> pd.DataFrame:
    """The latest effective event per item, indexed by item_id, sorted by (time, writer, seq)."""
    if retracted is None:
        retracted = retracted_ids(log)
    rows = log[effective_mask(log, retracted)].sort_values(ORDER)
    return rows.drop_duplicates("item_id", keep="last").set_index("item_id")[VIEW_COLUMNS]


def as_of(log: pd.DataFrame, frontier: dict[str, int]) -> pd.DataFrame:
    """The events up to a point: for each writer, its first `frontier[writer]` events."""
    limit = log["writer"].map(frontier).fillna(0).to_numpy()
    return log[log["seq"].to_numpy() < limit]


def labels(view: pd.DataFrame) -> pd.DataFrame:
    """Labeled items of a view, in the order they were labeled."""
    return view.loc[(view["action"] != "skip").to_numpy(), VIEW]


def skipped(view: pd.DataFrame) -> set[str]:
    return set(view.index[(view["action"] == "skip").to_numpy()])


class Latest:
    """`latest()` kept up to date as events arrive, cheaply: new events are folded into a
    small dict of changed items; the DataFrame is brought up to date only when a caller asks
    for all of it (`frame()`), while `top(item)` answers for one item at once."""

    def __init__(self, log: pd.DataFrame, retracted: set[str]):
        self._frame = latest(log, retracted)
        self._changed: dict[str, dict | None] = {}  # item -> its new top event (None: no state)

    def top(self, item_id: str) -> dict | None:
        if item_id in self._changed:
            return self._changed[item_id]
        try:
            at = self._frame.index.get_loc(item_id)
        except KeyError:
            return None
        return {"item_id": item_id, **self._frame.iloc[at].to_dict()}

    def fold(self, rows: list[dict], log, retracted: set[str]) -> None:
        """Apply new events (already counted in `retracted`); `log()` gives the whole log,
        needed only when an undo uncovers the event below the one it retracts. The result
        does not depend on the order of `rows`."""
        for row in rows:
            item, old = row["item_id"], self.top(row["item_id"])
            if row["action"] == "undo":
                if old is not None and old["event_id"] == row["target"]:
                    whole = log()
                    self._changed[item] = last_row(whole, effective_mask(whole, retracted, item_id=item))
            elif row["event_id"] not in retracted and (old is None or _key(row) > _key(old)):
                self._changed[item] = row

    def frame(self) -> pd.DataFrame:
        """The whole view, indexed by item_id, in (time, writer, seq) order."""
        if self._changed:
            changed, self._changed = self._changed, {}
            kept = self._frame[~self._frame.index.isin(list(changed))]
            new = sorted((row for row in changed.values() if row is not None), key=_key)
            frame = pd.DataFrame(new, columns=["item_id", *VIEW_COLUMNS]).set_index("item_id")
            merged = pd.concat([kept, frame.astype(kept.dtypes.to_dict())])
            in_order = kept.empty or not new or _key(kept.iloc[-1]) <= _key(new[0])
            self._frame = merged if in_order else merged.sort_values(ORDER)
        return self._frame


def last_row(log: pd.DataFrame, mask: np.ndarray) -> dict | None:
    """The masked row latest in (time, writer, seq), without copying or sorting the log."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return None
    times = log["time"].to_numpy(dtype="datetime64[us]")[rows]
    rows = rows[times == times.max()]
    if len(rows) > 1:  # a tie in time (a batch shares one): the largest writer, then seq
        writers = log["writer"].iloc[rows].to_numpy()
        rows = rows[writers == writers.max()]
    best = rows[log["seq"].to_numpy()[rows].argmax()]
    return log.iloc[int(best)].to_dict()


def _key(row) -> tuple:
    return pd.Timestamp(row["time"]), row["writer"], row["seq"]
