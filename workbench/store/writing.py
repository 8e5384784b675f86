"""Writing events: append, undo, retract and append_many, each as one new part file, fsynced.

An append writes one new file and touches no other, so its cost does not grow with the
store; a retract or an import is one file too, holding all of its events or (on any error)
none, because every event is checked before anything is written: its action, source and
fields, an undo's target (an event in this branch's scope, not undone yet), and an id the
caller minted. Events never change once written; an undo names the event it retracts.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict

import pandas as pd
import pyarrow as pa

from workbench.store import files, reading, schema, scope, views, writer_clock
from workbench.store.errors import StoreError
from workbench.store.schema import (
    ACTIONS,
    COLUMNS,
    EVENT_ID,
    PROVENANCE,
    SCHEMA,
    SCHEMA_VERSION,
    SOURCES,
    Event,
)


def append(store, item_id: str | None, label: str | None = None, *, action: str = "label",
           source: str = "human", annotator: str | None = None, query: str | None = None,
           target: str | None = None, event_id: str | None = None) -> Event:
    """Write one event durably (fsynced) before returning it.

    An undo needs `target`, the id of the label/relabel/skip event it retracts (its
    item_id may then be None). `event_id` lets the caller mint the id (32 lowercase hex
    digits, e.g. uuid4().hex) so that it can name the event before the write returns,
    as the widget does to undo a label still in flight.
    """
    with store._lock:
        annotator = annotator or store.annotator
        schema.check_event(item_id, label, action, source, annotator, query, target)
        event_id = _check_new_id(store, event_id)
        if action == "undo":
            item_id = _undo_target(store, target, item_id)["item_id"]
        elif action in ("relabel", "remove"):
            reading.refresh(store)  # it replaces the label it saw: read it, so the clock passes it
        now, tick = writer_clock.now(store)  # first: a forked child gets its own writer and seq here
        event = Event(event_id, item_id, label, action, annotator, now, source,
                      target, query, store._writer, store._seq, SCHEMA_VERSION,
                      store.current_branch, store.store_id, tick)
        row = asdict(event)
        _write_part(store, pa.Table.from_pylist([row], schema=SCHEMA))
        reading.ingest_rows(store, [row])
        store._own_ids.add(event_id)
        return event


def undo(store, target: str, *, annotator: str | None = None, source: str = "human") -> Event:
    """Retract the label, relabel or skip event whose id is `target`."""
    return append(store, None, action="undo", target=target, annotator=annotator, source=source)


def retract(store, targets: list[str], *, annotator: str | None = None,
            source: str = "human") -> list[Event]:
    """Retract several events at once, as one file: all of them, or (on error) none."""
    with store._lock:
        annotator = annotator or store.annotator
        targets = list(targets)
        if not targets:
            return []
        if len(set(targets)) != len(targets):
            raise StoreError(f"retract got the same event twice: {targets}")
        for target in targets:
            schema.check_event(None, None, "undo", source, annotator, None, target)
        items = [_undo_target(store, t, None)["item_id"] for t in targets]
        now, tick = writer_clock.now(store)
        rows = [asdict(Event(uuid.uuid4().hex, item, None, "undo", annotator, now, source,
                             target, None, store._writer, store._seq + k, SCHEMA_VERSION,
                             store.current_branch, store.store_id, tick))
                for k, (item, target) in enumerate(zip(items, targets))]
        _write_part(store, pa.Table.from_pylist(rows, schema=SCHEMA))
        reading.ingest_rows(store, rows)
        store._own_ids.update(r["event_id"] for r in rows)
        return [Event(**r) for r in rows]


def append_many(store, records: list[dict] | pd.DataFrame, *, source: str = "import"
                ) -> list[str]:
    """Write many events as one file (imports, benchmarks); returns their event ids.

    Columns: item_id (required; may be left out for undo rows), label, action, annotator,
    time (ISO 8601 or datetime; naive means UTC; default now), source, query, target, and
    event_id (minted here when missing; see append()). Every row is checked before
    anything is written: the file holds all of them or none.
    """
    with store._lock:
        frame = pd.DataFrame(records).reset_index(drop=True)
        if frame.empty:
            return []
        table = _batch(store, frame, source)
        _write_part(store, table)
        if table.num_rows > 1000:
            frame = table.to_pandas()
            reading.ingest(store, frame)
            if store._unsynced is not None:
                store._unsynced.append(frame)
        else:
            reading.ingest_rows(store, table.to_pylist())
        ids = table["event_id"].to_pylist()
        store._own_ids.update(ids)
        return ids


def _check_new_id(store, event_id: str | None) -> str:
    if event_id is None:
        return uuid.uuid4().hex
    if not (isinstance(event_id, str) and EVENT_ID.fullmatch(event_id)):
        raise StoreError(f"event_id must be 32 lowercase hex digits (uuid4().hex), got "
                         f"{event_id!r}")
    if event_id in store._own_ids:
        raise StoreError(f"event_id {event_id!r} is already in the store; mint a new one")
    return event_id


def _write_part(store, table: pa.Table) -> None:
    name = f"part-{store._writer}-{store._seq:012d}.parquet"
    files.write_durably(store.path, name, files.parquet_bytes(table))
    store._seq += table.num_rows
    store._loaded.add(name)
    before, after = files.bump_stamp(store.path)
    if before is not None and before == store._stamp_seen:  # ours is the only file since: seen
        store._stamp_seen = after


def _batch(store, frame: pd.DataFrame, source: str) -> pa.Table:
    """Check append_many rows and fill defaults; raises StoreError naming a bad row."""
    allowed = ["item_id", "label", "action", "annotator", "time", "source", "query", "target",
               "event_id"]
    if not set(frame.columns) <= set(allowed):
        raise StoreError(f"append_many got columns {sorted(frame.columns)}; expected some "
                         f"of {allowed}")
    (now, tick), n = writer_clock.now(store), len(frame)
    defaults = {"item_id": None, "label": None, "query": None, "target": None,
                "action": "label", "annotator": store.annotator, "source": source}
    for col, default in defaults.items():
        frame[col] = (frame[col].astype(object).where(frame[col].notna(), default)
                      if col in frame else default)
    for col, choices in (("action", ACTIONS), ("source", SOURCES)):
        bad = sorted(set(frame[col]) - set(choices), key=str)
        if bad:
            raise StoreError(f"unknown {col} {bad[0]!r} in append_many; expected one of "
                             f"{', '.join(choices)}")
    try:
        times = pd.to_datetime(frame["time"] if "time" in frame else pd.Series(now, range(n)),
                               utc=True, format="ISO8601").fillna(now)
    except (ValueError, TypeError) as err:
        raise StoreError(f"append_many column 'time' must hold ISO 8601 times or "
                         f"datetimes: {err}") from err
    undo = frame["action"] == "undo"
    if undo.any():  # an undo row must point at an event in scope, and takes that event's item
        scope.branch_view(store)
        known = scope.scope_log(store).set_index("event_id")
        stored = frame["target"].isin(known.index[known["action"].isin(views.UNDOABLE)])
        _check_rows(undo & ~stored, "undo needs a target that is a label, relabel, skip, "
                    f"remove or confirm event on branch {store.current_branch!r}", frame)
        frame["item_id"] = frame["item_id"].where(~undo, frame["target"].map(known["item_id"]))
    needs_label = frame["action"].isin(views.CARRIES_LABEL)
    _check_rows(frame["item_id"].isna() | (frame["item_id"] == ""), "item_id is missing",
                frame)
    _check_rows(needs_label & frame["label"].isna(), "label/relabel/confirm needs a label",
                frame)
    _check_rows(~needs_label & frame["label"].notna(),
                "only label/relabel/confirm carry a label", frame)
    _check_rows(~undo & ~frame["source"].isin(PROVENANCE) & frame["target"].notna(),
                "only undo (and merge, revert, restore events) carry a target", frame)
    given = frame["event_id"] if "event_id" in frame else pd.Series([None] * n)
    try:
        event_ids = [_check_new_id(store, None if pd.isna(e) else e) for e in given]
    except StoreError as err:
        raise StoreError(f"append_many: {err}") from None
    if len(set(event_ids)) != n:
        raise StoreError("append_many: the same event_id appears on two rows")
    # Rows given a time later than the clock keep it as their clock, so a batch of
    # imported history keeps its order; every other row sorts after all this handle has seen.
    clocks = times.dt.floor("us").clip(lower=pd.Timestamp(tick))
    writer_clock.saw_clock(store, clocks.max())
    return pa.table({
        **{c: _strings(frame[c], c) for c in defaults},
        "event_id": pa.array(event_ids, pa.string()),
        "time": pa.array(times.dt.floor("us"), pa.timestamp("us", tz="UTC")),
        "clock": pa.array(clocks, pa.timestamp("us", tz="UTC")),
        "writer": pa.array([store._writer] * n, pa.string()),
        "seq": pa.array(range(store._seq, store._seq + n), pa.int64()),
        "schema_version": pa.array([SCHEMA_VERSION] * n, pa.int16()),
        "branch": pa.array([store.current_branch] * n, pa.string()),
        "store_id": pa.array([store.store_id] * n, pa.string()),
    }).select(COLUMNS).cast(SCHEMA)


def _undo_target(store, target: str | None, item_id: str | None) -> dict:
    if target is None:
        raise StoreError("an undo must name the event it retracts: pass target=<event_id> "
                         "(see store.events())")
    scope.branch_view(store)  # up to date, so "already undone" counts every undo in scope
    row = reading.find(store, target)
    if row is None or row["action"] not in views.UNDOABLE:
        raise StoreError(f"undo target {target!r} is not a label/relabel/skip/remove/confirm "
                         f"event in {store.path}")
    if not scope.in_scope(store, row):
        raise StoreError(f"undo target {target!r} is an event of branch {row['branch']!r}, "
                         f"not of {store.current_branch!r}; open the store on that branch to undo it")
    if target in store._retracted:
        raise StoreError(f"undo target {target!r} is already undone")
    if item_id is not None and row["item_id"] != item_id:
        raise StoreError(f"undo target {target!r} is an event on item "
                         f"{row['item_id']!r}, not on item {item_id!r}")
    return row


def _strings(column: pd.Series, name: str) -> pa.Array:
    try:
        return pa.array(column, pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise StoreError(f"append_many column {name!r} must hold str or None (map classes to "
                         f"str yourself): {err}") from err


def _check_rows(bad: pd.Series, what: str, frame: pd.DataFrame) -> None:
    if bad.any():
        row = frame[bad.to_numpy()].iloc[0]
        raise StoreError(f"append_many: {what}; row {row.name} has item_id={row['item_id']!r}, "
                         f"action={row['action']!r}, label={row['label']!r}")
