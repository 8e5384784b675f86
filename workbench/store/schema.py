"""What an event is: the columns every labeling action is stored as, their Parquet schema,
the checks each event passes before it is written, and reading event files back.

An event says who did what to which item (`action`, `label`, `annotator`, `source`, `query`),
which event it names (`target`: the one an undo retracts, or the one a merge, revert or
restore copies), where it sits in the log's total order (`clock`, `writer`, `seq`; see
clock.py), and where it was written (`branch`, `store_id`: a handle sees its own branch's
events in its own store, and any others only through commits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute, for the clock of old events

from workbench.store import files, views
from workbench.store.errors import StoreError
from workbench.store.refs import MAIN

SCHEMA_VERSION = 3  # 2: events carry their branch and home store; 3: a causal clock
ACTIONS = ("label", "skip", "undo", "relabel", "remove", "confirm")
SOURCES = ("human", "suggestion", "import", "simulated", "merge", "revert", "restore")
PROVENANCE = ("merge", "revert", "restore")  # sources of events that copy another event's label
EVENT_ID = re.compile(r"[0-9a-f]{32}")

SCHEMA = pa.schema([
    ("event_id", pa.string()), ("item_id", pa.string()), ("label", pa.string()),
    ("action", pa.string()), ("annotator", pa.string()), ("time", pa.timestamp("us", tz="UTC")),
    ("source", pa.string()), ("target", pa.string()), ("query", pa.string()),
    ("writer", pa.string()), ("seq", pa.int64()), ("schema_version", pa.int16()),
    ("branch", pa.string()), ("store_id", pa.string()), ("clock", pa.timestamp("us", tz="UTC")),
])
COLUMNS = SCHEMA.names


@dataclass(frozen=True)
class Event:
    """One row of the log, as returned by append(), undo() and retract()."""

    event_id: str
    item_id: str
    label: str | None
    action: str
    annotator: str
    time: datetime
    source: str
    target: str | None
    query: str | None
    writer: str
    seq: int
    schema_version: int
    branch: str = MAIN
    store_id: str | None = None
    clock: datetime | None = None  # the causal order (see writer_clock.now); `time` is for people


def read_files(directory: Path, names: list[str]) -> pa.Table:
    """The events of these part or segment files, in SCHEMA."""
    table = files.read_parquet_files(directory, names, SCHEMA)
    # Events from before the causal clock (schema 1 and 2) were ordered by their wall time.
    ticks = pa.compute.coalesce(table["clock"], table["time"])
    return table.set_column(table.schema.get_field_index("clock"), "clock", ticks)


def local_mask(log: pd.DataFrame, branch: str, store_id: str) -> np.ndarray:
    """Events written on `branch` in this store (events from before branches read as main)."""
    on = log["branch"].fillna(MAIN).to_numpy() == branch
    home = log["store_id"]
    return on & (home.isna() | (home == store_id)).to_numpy()


def is_local(row: dict, branch: str, store_id: str) -> bool:
    """`local_mask` for one event (a dict)."""
    home = row.get("store_id")
    return ((row.get("branch") or MAIN) == branch) and (missing(home) or home == store_id)


def missing(value) -> bool:
    """None, or a NaN that pandas put where a value is missing."""
    return value is None or (isinstance(value, float) and value != value)


def plain(row: dict) -> dict:
    """A log row as a plain dict: missing values are None (not NaN)."""
    return {k: (None if missing(v) else v) for k, v in row.items()}


def check_event(item_id, label, action, source, annotator, query, target) -> None:
    """Refuse an event an append or retract was given (a StoreError naming the bad field)."""
    if action not in ACTIONS:
        raise StoreError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    if source not in SOURCES:
        raise StoreError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    checks = [("item_id", item_id, action == "undo"), ("annotator", annotator, False),
              ("label", label, action not in views.CARRIES_LABEL), ("query", query, True),
              ("target", target, True)]
    for name, value, optional in checks:
        if not (isinstance(value, str) and value) and not (optional and value is None):
            raise StoreError(f"{name} must be a non-empty str{' or None' if optional else ''} "
                             f"for a {action!r} event (map classes to str yourself), got "
                             f"{type(value).__name__} {value!r}")
    if label is not None and action not in views.CARRIES_LABEL:
        raise StoreError(f"a {action!r} event carries no label, got label={label!r}")
    if target is not None and action != "undo" and source not in PROVENANCE:
        raise StoreError(f"only an undo event has a target (and merge, revert and restore "
                         f"events, naming the event they copy), got target={target!r} for "
                         f"{action!r}")
