"""The log in memory: what a handle has read of its store's folder, kept up to date cheaply.

On each read call a handle lists the folder and reads only the files it has not seen: other
writers' parts, and segments that merged parts it had not read (newest first: a segment that
merged older ones makes reading those unnecessary). Its own appends go in without a round trip
through the disk. Whatever comes in also moves the handle's clock, counts the events this
branch wrote here (the next commit holds them), and is queued for the branch's view and for
sync() (scope.py).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute, for filtering a segment

from workbench.store import files, schema, views, writer_clock
from workbench.store.errors import StoreError
from workbench.store.schema import SCHEMA


def events(store) -> pd.DataFrame:
    """The whole log, re-read from disk for new files, sorted by (time, writer, seq)."""
    with store._lock:
        refresh(store)
        return log_frame(store).sort_values(views.ORDER, ignore_index=True)


def events_of(store, item_ids) -> pd.DataFrame:
    """The events on these items (every branch), sorted like events(): cheaper than
    filtering events() on a big store."""
    with store._lock:
        refresh(store)
        log = log_frame(store)
        rows = log[views.isin(log["item_id"], item_ids)]
        return rows.sort_values(views.ORDER, ignore_index=True)


def missing_events(store, frontier: dict[str, int]) -> dict[str, int]:
    """writer -> how many of the events a frontier names are not in this store (none
    missing: empty). A ref may point at a commit only when this is empty for its frontier."""
    with store._lock:
        refresh(store)
        log = log_frame(store)
        inside = log[views.frontier_mask(log, frontier)]
        have = inside.groupby("writer")["seq"].nunique()
        return {w: n - int(have.get(w, 0)) for w, n in frontier.items() if have.get(w, 0) < n}


def event(store, event_id: str) -> dict:
    """One event by id, as a dict; a StoreError if there is none."""
    with store._lock:
        refresh(store)
        row = find(store, event_id)
        if row is None:
            raise StoreError(f"no event {event_id!r} in {store.path}")
        return row


def log_frame(store) -> pd.DataFrame:
    """The in-memory log as one DataFrame (pending appends and read chunks concatenated once)."""
    if store._pending:
        store._chunks.append(pa.Table.from_pylist(store._pending, schema=SCHEMA).to_pandas())
        store._pending = []
    if len(store._chunks) != 1:
        store._chunks = [pd.concat(store._chunks, ignore_index=True) if store._chunks
                         else SCHEMA.empty_table().to_pandas()]
    return store._chunks[0]


def refresh(store, *, quick: bool = False) -> None:
    """Read the files this handle has not seen: other writers' parts, new segments. With
    `quick`, nothing is listed when the log stamp (files.STAMP) is the one seen at the last
    listing: no writer has published event files since."""
    stamp = files.read_stamp(store.path)  # before listing: what it says is in the listing
    if quick and stamp is not None and stamp == store._stamp_seen:
        return
    for _ in range(10):
        try:
            table, loaded = _read_new(store)
        except FileNotFoundError:  # compacted away between listing and reading: list again
            continue
        store._stamp_seen = stamp
        store._loaded |= loaded
        if table is not None and table.num_rows:
            if table.num_rows > 1000:  # a bulk read (opening, a segment): straight to pandas
                frame = table.to_pandas().drop_duplicates("event_id")
                ingest(store, frame)
                rows = frame
            else:  # a few events from another notebook: no DataFrame round trip
                rows = list({r["event_id"]: r for r in table.to_pylist()}.values())
                ingest_rows(store, rows)
            if store._unsynced is not None and isinstance(rows, pd.DataFrame):
                store._unsynced.append(rows)  # (small batches were counted by ingest_rows)
        return
    raise StoreError(f"files in {store.path} kept vanishing while reading it")


def _read_new(store) -> tuple[pa.Table | None, set[str]]:
    new = set(files.list_names(store.path, ("part-", "segment-"))) - store._loaded
    tables, loaded = [], set()
    # Newest first: a segment that merged older ones makes reading those unnecessary.
    for name in sorted((n for n in new if n.startswith("segment-")), reverse=True):
        if name in loaded:
            continue
        merged = files.merged_parts(store.path / name)
        seen = merged & store._loaded
        if seen != merged:  # a segment of only seen parts holds nothing new
            table = schema.read_files(store.path, [name])
            if seen:
                known = pa.array(log_frame(store)["event_id"].to_numpy(), pa.string())
                table = table.filter(pa.compute.invert(pa.compute.is_in(table["event_id"], known)))
            tables.append(table)
        loaded |= merged | {name}
    parts = new - loaded
    if parts:
        tables.append(schema.read_files(store.path, sorted(parts)))
    return (pa.concat_tables(tables) if tables else None), loaded | parts


def ingest(store, frame: pd.DataFrame) -> None:
    """Take a batch of events (a DataFrame) into the log: the clock, this branch's counts, the view."""
    store._chunks.append(frame)
    writer_clock.saw_clock(store, frame["clock"].max())
    local = frame[schema.local_mask(frame, store.current_branch, store.store_id)]
    for writer, top in local.groupby("writer")["seq"].max().items():
        store._local_counts[writer] = max(store._local_counts.get(writer, 0), int(top) + 1)
    if len(frame) > 1000:  # rebuilding the view from the log beats folding row by row
        store._current, store._unfolded = None, []
    elif store._current is not None:
        store._unfolded.extend(frame.to_dict("records"))


def ingest_rows(store, rows: list[dict]) -> None:
    """Take a few events (as dicts) into the log: an append's, or a few read from another writer."""
    store._pending.extend(rows)
    writer_clock.saw_clock(store, max((r["clock"] for r in rows), default=None))
    if store._unsynced is not None:
        store._unsynced.append(rows)
    for row in rows:
        if schema.is_local(row, store.current_branch, store.store_id):
            w = row["writer"]
            store._local_counts[w] = max(store._local_counts.get(w, 0), row["seq"] + 1)
    if store._current is not None:
        store._unfolded.extend(rows)


def find(store, event_id: str) -> dict | None:
    """The event with this id, from memory (pending first: the latest appends)."""
    for row in reversed(store._pending):
        if row["event_id"] == event_id:
            return row
    log = log_frame(store)
    rows = log[(log["event_id"] == event_id).to_numpy()]
    return None if rows.empty else schema.plain(rows.iloc[0].to_dict())


def all_events(store) -> pd.DataFrame:
    """The whole log, with whatever other writers added since the last look."""
    refresh(store)
    return log_frame(store)
