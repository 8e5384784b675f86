"""LabelStore: every labeling action as an immutable event in a directory of Parquet files.

Layout of a store directory::

    _workbench.json                  {"format": "workbench-labelstore", "schema_version": 1}
    part-<writer>-<seq>.parquet      one small file per append() / append_many() / retract()
    segment-<stamp>-<id>.parquet     parts merged by compact(); its metadata lists them
    _pending-segment-<stamp>-<id>.parquet  a compaction not published yet (see below)
    _claims/                         which items each open session is showing (claims.py)
    .tmp-*                           files being written; every reader ignores them
    .compact.lock                    flock that lets one process at a time compact

Why this shape:
- Every acknowledged event lives in a plain ``.parquet`` file, so ``pandas.read_parquet(path)``
  reads the whole log with no help from us (pyarrow skips names starting with "." or "_").
- An append writes one new file and touches no other, so its cost does not grow with the
  store; several notebooks can write at once because each handle has its own writer id in
  its file names; and events never change once written, which is what history (commit,
  diff, checkout) needs. Events are totally ordered by (clock, writer, seq): `clock` is a
  hybrid logical clock (see `_now`), so order is causal whatever the machines' wall clocks
  say; `time` is the wall clock, kept for people to read.
- compact() writes the merged segment under a name every reader ignores (`_pending-...`)
  and leaves the parts in place: a reader that listed them (a teammate's pull, say) still
  finds them, and plain pandas never sees an event twice. Once the segment is
  RETIRE_AFTER_S old (as git's gc keeps loose objects for a grace period) a later compact()
  or open() publishes it by a rename, then deletes the parts it holds. Our readers skip parts
  a segment lists (and dedupe by event_id), so a crash anywhere in between leaves
  duplicates, never a loss, and the next compaction finishes the job.
- An undo names the event it retracts (`target`); nothing in the store means "the latest".

In memory, a handle keeps the log it has read and, on each read call, lists the directory
and reads only the files it has not seen (`sync()` returns those events). The current view
(workbench.store.views) is built from the log once, then folded forward with new events.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute, for filtering a segment

from workbench.store import clock, files, history, views
from workbench.store.errors import SchemaVersionError, StoreError, make_branch
from workbench.store.history import MAIN, History, check_name

SCHEMA_VERSION = 3  # 2: events carry their branch and home store; 3: a causal clock
FORMAT = "workbench-labelstore"
ACTIONS = ("label", "skip", "undo", "relabel", "remove", "confirm")
SOURCES = ("human", "suggestion", "import", "simulated", "merge", "revert", "restore")
PROVENANCE = history.PROVENANCE  # their events name the event they copy (target)
ORDER = views.ORDER
AUTO_COMPACT_PARTS = 500  # open() compacts above this many loose parts, so reopening stays fast
RETIRE_AFTER_S = 15 * 60  # a compaction is published (its parts deleted) after this long
PENDING = "_pending-"  # the prefix of a segment not published yet: pyarrow and pandas skip "_"
MAX_SEGMENTS = 8  # compaction merges the segments too when there are this many
EVENT_ID = re.compile(r"[0-9a-f]{32}")
_META = "_workbench.json"

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
    clock: datetime | None = None  # the causal order (see _now); `time` is for people


class LabelStore(History):
    """Append-only label events in Parquet; current labels are a view of the log.

    A handle works on one branch (`LabelStore.open(path, branch=...)`): what it sees is the
    branch's last commit plus the events written on that branch in this store; the history
    verbs (commit, log, diff, blame, merge, ...) come from `workbench.store.history`.
    """

    def __init__(self, path: Path, annotator: str, meta: dict, branch: str = MAIN):
        """Use LabelStore.open(); this only sets up in-memory state."""
        self.path, self.annotator = path, annotator
        self.version, self.store_id = meta["schema_version"], meta["store_id"]
        self.current_branch = branch
        self._lock = threading.RLock()  # a background thread may append while the UI does
        self._new_writer()  # sets _writer, _pid and _seq
        self._clock = datetime.min.replace(tzinfo=timezone.utc)  # the latest clock seen or given
        self._loaded: set[str] = set()  # files whose events are in memory (or covered by one)
        self._chunks: list[pd.DataFrame] = []  # the in-memory log, lazily concatenated
        self._pending: list[dict] = []  # this handle's single appends, not yet in _chunks
        self._retracted: set[str] = set()  # event ids that some undo in scope targets
        self._scope_key: tuple | None = None  # (head commit, merging commit) the view is of
        self._frontier: dict[str, int] = {}  # events of the scope by (writer, seq), see _in_scope
        self._local_counts: dict[str, int] = {}  # writers of this branch here -> events written
        self._own_ids: set[str] = set()  # event ids this handle wrote (caller-given ids are checked)
        self._current: views.Latest | None = None  # the state per item; None until first needed
        self._unfolded: list[dict] = []  # events not yet folded into _current
        self._unsynced: list | None = None  # events read or written since the last sync()
        self._synced_scope: tuple | None = None  # (scope key, frontier) at the last sync()

    @classmethod
    def open(cls, path: str | os.PathLike, *, annotator: str | None = None,
             branch: str = MAIN) -> LabelStore:
        """Open the store at `path` on `branch`, creating the store if `path` is missing or
        an empty directory. Branches other than main are made with `store.branch(name)`."""
        path = Path(path)
        check_name(branch, "branch")
        store = cls(path, annotator or _default_annotator(), _init_dir(path), branch)
        if branch != MAIN and branch not in store.branches()["branch"].tolist():
            raise StoreError(f"no branch {branch!r} in {path}; branches: "
                             f"{', '.join(store.branches()['branch'])} (make one with ",
                             make_branch(branch), ")")
        files.clean_temp_files(path)
        history_dir = path / history.HISTORY
        for folder, _, _ in os.walk(history_dir) if history_dir.is_dir() else ():
            files.clean_temp_files(Path(folder))  # a ref or commit a killed writer left half made
        store.compact(min_parts=AUTO_COMPACT_PARTS + 1)  # also finishes interrupted compactions
        store._finish_interrupted()  # a merge, revert or restore killed half way
        return store

    @classmethod
    def reader(cls, path: str | os.PathLike, *, branch: str = MAIN) -> LabelStore:
        """A handle that only reads: another store's files during a pull, push or clone.
        Unlike open(), it creates nothing, compacts nothing, finishes nothing; a path that
        holds no store is a StoreError."""
        path = Path(path)
        return cls(path, _default_annotator(), read_meta(path), check_name(branch, "branch"))

    # -- writing -----------------------------------------------------------------------------
    def append(self, item_id: str | None, label: str | None = None, *, action: str = "label",
               source: str = "human", annotator: str | None = None, query: str | None = None,
               target: str | None = None, event_id: str | None = None) -> Event:
        """Write one event durably (fsynced) before returning it.

        An undo needs `target`, the id of the label/relabel/skip event it retracts (its
        item_id may then be None). `event_id` lets the caller mint the id (32 lowercase hex
        digits, e.g. uuid4().hex) so that it can name the event before the write returns,
        as the widget does to undo a label still in flight.
        """
        with self._lock:
            annotator = annotator or self.annotator
            _check_event(item_id, label, action, source, annotator, query, target)
            event_id = self._check_new_id(event_id)
            if action == "undo":
                item_id = self._undo_target(target, item_id)["item_id"]
            elif action in ("relabel", "remove"):
                self._refresh()  # it replaces the label it saw: read it, so the clock passes it
            now, tick = self._now()  # first: a forked child gets its own writer and seq here
            event = Event(event_id, item_id, label, action, annotator, now, source,
                          target, query, self._writer, self._seq, SCHEMA_VERSION,
                          self.current_branch, self.store_id, tick)
            row = asdict(event)
            self._write_part(pa.Table.from_pylist([row], schema=SCHEMA))
            self._ingest_rows([row])
            self._own_ids.add(event_id)
            return event

    def undo(self, target: str, *, annotator: str | None = None, source: str = "human") -> Event:
        """Retract the label, relabel or skip event whose id is `target`."""
        return self.append(None, action="undo", target=target, annotator=annotator, source=source)

    def retract(self, targets: list[str], *, annotator: str | None = None,
                source: str = "human") -> list[Event]:
        """Retract several events at once, as one file: all of them, or (on error) none."""
        with self._lock:
            annotator = annotator or self.annotator
            targets = list(targets)
            if not targets:
                return []
            if len(set(targets)) != len(targets):
                raise StoreError(f"retract got the same event twice: {targets}")
            for target in targets:
                _check_event(None, None, "undo", source, annotator, None, target)
            items = [self._undo_target(t, None)["item_id"] for t in targets]
            now, tick = self._now()
            rows = [asdict(Event(uuid.uuid4().hex, item, None, "undo", annotator, now, source,
                                 target, None, self._writer, self._seq + k, SCHEMA_VERSION,
                                 self.current_branch, self.store_id, tick))
                    for k, (item, target) in enumerate(zip(items, targets))]
            self._write_part(pa.Table.from_pylist(rows, schema=SCHEMA))
            self._ingest_rows(rows)
            self._own_ids.update(r["event_id"] for r in rows)
            return [Event(**r) for r in rows]

    def append_many(self, records: list[dict] | pd.DataFrame, *, source: str = "import"
                    ) -> list[str]:
        """Write many events as one file (imports, benchmarks); returns their event ids.

        Columns: item_id (required; may be left out for undo rows), label, action, annotator,
        time (ISO 8601 or datetime; naive means UTC; default now), source, query, target, and
        event_id (minted here when missing; see append()). Every row is checked before
        anything is written: the file holds all of them or none.
        """
        with self._lock:
            frame = pd.DataFrame(records).reset_index(drop=True)
            if frame.empty:
                return []
            table = self._batch(frame, source)
            self._write_part(table)
            if table.num_rows > 1000:
                frame = table.to_pandas()
                self._ingest(frame)
                if self._unsynced is not None:
                    self._unsynced.append(frame)
            else:
                self._ingest_rows(table.to_pylist())
            ids = table["event_id"].to_pylist()
            self._own_ids.update(ids)
            return ids

    # -- reading -----------------------------------------------------------------------------
    def sync(self) -> list[dict]:
        """The events that arrived since the last sync(), as dicts of their columns: written
        by other handles (other notebooks, processes), which are read first, and through this
        one (a merge, a restore). Cheap when nothing changed: one directory listing. The first
        call only starts the count (it returns nothing: read the current state after it).
        Meant for one consumer per handle, the session that owns it.

        When the branch's head moved (a merge, pull, revert, restore or reset, by any handle),
        the events that came into the branch's scope or left it count as arrived too, so a
        session sees a teammate's merged labels like any new label."""
        with self._lock:
            self._refresh()
            new, self._unsynced = self._unsynced or [], []
            rows = [row for batch in new
                    for row in (batch.to_dict("records") if isinstance(batch, pd.DataFrame) else batch)]
            key, frontier = self._read_scope()
            if self._synced_scope is not None and key != self._synced_scope[0]:
                rows += self._moved_between(self._synced_scope[1], frontier)
            self._synced_scope = (key, frontier)
            return rows

    def _moved_between(self, before: dict, after: dict) -> list[dict]:
        """The events inside one of two frontiers and not the other (as dicts)."""
        log = self._log()
        moved = views.frontier_mask(log, before) != views.frontier_mask(log, after)
        return [_row(r) for r in log[moved].to_dict("records")]

    def save_sidecar(self, name: str, data: dict) -> None:
        """Keep a small JSON document beside the log (a session's history, say). `name`
        starts with "_" so that readers of the Parquet files never see it."""
        if not (name.startswith("_") and name.endswith(".json") and "/" not in name):
            raise StoreError(f"sidecar name must look like '_name.json', got {name!r}")
        files.write_durably(self.path, name, json.dumps(data, default=float).encode())

    def load_sidecar(self, name: str) -> dict | None:
        """A sidecar written by save_sidecar(), or None when there is none."""
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return None

    def events(self) -> pd.DataFrame:
        """The whole log, re-read from disk for new files, sorted by (time, writer, seq)."""
        with self._lock:
            self._refresh()
            return self._log().sort_values(ORDER, ignore_index=True)

    def events_of(self, item_ids) -> pd.DataFrame:
        """The events on these items (every branch), sorted like events(): cheaper than
        filtering events() on a big store."""
        with self._lock:
            self._refresh()
            log = self._log()
            rows = log[views.isin(log["item_id"], item_ids)]
            return rows.sort_values(ORDER, ignore_index=True)

    def missing_events(self, frontier: dict[str, int]) -> dict[str, int]:
        """writer -> how many of the events a frontier names are not in this store (none
        missing: empty). A ref may point at a commit only when this is empty for its frontier."""
        with self._lock:
            self._refresh()
            log = self._log()
            inside = log[views.frontier_mask(log, frontier)]
            have = inside.groupby("writer")["seq"].nunique()
            return {w: n - int(have.get(w, 0)) for w, n in frontier.items() if have.get(w, 0) < n}

    def event(self, event_id: str) -> dict:
        """One event by id, as a dict; a StoreError if there is none."""
        with self._lock:
            self._refresh()
            row = self._find(event_id)
            if row is None:
                raise StoreError(f"no event {event_id!r} in {self.path}")
            return row

    def current_labels(self) -> pd.DataFrame:
        """Per item_id, the latest label/relabel that no undo retracts and no skip follows.

        Rows come in the order they were labeled: by (time, writer, seq).
        """
        with self._lock:
            return views.labels(self._view().frame())

    def confirmations(self) -> pd.DataFrame:
        """Per item_id, the latest confirm (a review that kept the label) that no undo takes
        back and that still stands: it confirms the item's current label and comes after the
        event that gave it. Columns: label, annotator, time, event_id."""
        columns = ["label", "annotator", "time", "event_id"]
        with self._lock:
            view = self._view()
            log = self._log()
            confirms = log[(log["action"] == views.CONFIRM).to_numpy()]  # few: scope them alone
            confirms = confirms[views.frontier_mask(confirms, self._frontier)
                                | _local_mask(confirms, self.current_branch, self.store_id)]
            confirms = confirms[~views.isin(confirms["event_id"], self._retracted)]
            if confirms.empty:
                return pd.DataFrame(columns=columns, index=pd.Index([], name="item_id"))
            last = views.in_order(confirms).drop_duplicates("item_id", keep="last").set_index("item_id")
            frame = view.frame()
            current = frame[views.isin(frame["action"], views.LABELING)].reindex(last.index)
            stands = (current["label"] == last["label"]).to_numpy() & (  # after the label it keeps
                pd.to_datetime(current["clock"], utc=True) <= pd.to_datetime(last["clock"], utc=True)
            ).to_numpy()
            return last.loc[stands, columns]

    def skipped(self) -> set[str]:
        """Items whose latest effective event is a skip."""
        with self._lock:
            return views.skipped(self._view().frame())

    def states(self, item_ids) -> dict[str, dict]:
        """For the given items, the event that decides each one's state (label, relabel or
        skip), as a dict of its columns; items with none (never labeled, all undone) are absent.
        Cheap for a few items, however big the store."""
        with self._lock:
            view = self._view()
            tops = ((item, view.top(item)) for item in dict.fromkeys(item_ids))
            return {item: top for item, top in tops if top is not None}

    def compact(self, *, min_parts: int = 2, retire_after: float | None = None) -> int:
        """Merge loose part files into one segment; returns how many parts it merged. The
        segment is published, and the parts it holds deleted, once it is `retire_after`
        seconds old (default RETIRE_AFTER_S; 0: at once, when no other process may be
        reading); until then it waits under a name readers skip.

        Returns 0 without waiting when another process holds the compaction lock.
        """
        retire_after = RETIRE_AFTER_S if retire_after is None else retire_after
        with files.locked(self.path / ".compact.lock", wait=False) as held:
            if not held:
                return 0
            covered = self._publish_compactions(retire_after)
            parts = sorted(set(files.list_names(self.path, ("part-",))) - covered)
            segments = sorted(set(files.list_names(self.path, ("segment-",))) - covered)
            # Every pull and push reads each segment's list of parts: past a few segments,
            # merge them too (the new one lists theirs and them, and they retire like parts).
            deep = len(segments) >= MAX_SEGMENTS
            if len(parts) < min_parts and not deep:
                return 0
            inputs = parts + (segments if deep else [])
            held = set(inputs).union(*(files.merged_parts(self.path / n) for n in segments)) if deep \
                else set(parts)
            table = _read(self.path, inputs).sort_by([(c, "ascending") for c in ORDER])
            table = table.replace_schema_metadata({files.MERGED_KEY: json.dumps(sorted(held))})
            stamp = clock.wall_clock().strftime("%Y%m%dT%H%M%S")
            files.write_durably(self.path, f"{PENDING}segment-{stamp}-{uuid.uuid4().hex[:12]}.parquet",
                                files.parquet_bytes(table))
            if retire_after <= 0:  # nobody else reading: publish at once
                self._publish_compactions(retire_after)
            return len(parts)

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return sum(map(len, self._chunks)) + len(self._pending)

    def bind(self, *, classes: list[str], items_hash: str, n_items: int) -> None:
        """Tie the store to a pool and a class set the first time a session opens it; later,
        refuse a session (or a push, a pull) of another class set. A pool that gained or lost
        items is allowed: labels point at item ids, which stay valid."""
        with self._lock:
            meta = read_meta(self.path)
            bound = meta.get("classes")
            if bound is not None and list(bound) != list(classes):
                raise StoreError(f"store {self.path} holds labels of the classes {bound}, not "
                                 f"{list(classes)}; open another store for this class set")
            pool = {"items_hash": items_hash, "n_items": n_items}
            if bound is None or meta.get("pool") != pool:
                write_meta(self.path, {**meta, "classes": list(classes), "pool": pool})

    def __repr__(self) -> str:
        return (f"LabelStore({str(self.path)!r}, branch={self.current_branch!r}, "
                f"annotator={self.annotator!r}, events={len(self)}, writer={self._writer!r})")

    # -- internals -------------------------------------------------------------------------
    def _new_writer(self) -> None:
        self._writer, self._pid, self._seq = uuid.uuid4().hex[:16], os.getpid(), 0

    def _now(self) -> tuple[datetime, datetime]:
        """(wall time, clock) for the next event. The clock is a hybrid logical clock: the
        wall time, but always after every event this handle has read or written, so an event
        sorts after everything its writer had seen (a relabel after the label it replaces)
        even when another machine's clock runs ahead. Pulls and merges carry it along: their
        events are read, so whatever is written next comes after them."""
        if os.getpid() != self._pid:  # a forked child must not reuse its parent's file names
            self._new_writer()
        wall = clock.wall_clock()
        self._clock = max(wall, self._clock + clock.TICK)
        return wall, self._clock

    def _saw_clock(self, latest) -> None:
        """Move the clock past an event read or written (a datetime or Timestamp; NaT skipped)."""
        if latest is not None and not pd.isna(latest):
            self._clock = max(self._clock, pd.Timestamp(latest).to_pydatetime())

    def _check_new_id(self, event_id: str | None) -> str:
        if event_id is None:
            return uuid.uuid4().hex
        if not (isinstance(event_id, str) and EVENT_ID.fullmatch(event_id)):
            raise StoreError(f"event_id must be 32 lowercase hex digits (uuid4().hex), got "
                             f"{event_id!r}")
        if event_id in self._own_ids:
            raise StoreError(f"event_id {event_id!r} is already in the store; mint a new one")
        return event_id

    def _write_part(self, table: pa.Table) -> None:
        name = f"part-{self._writer}-{self._seq:012d}.parquet"
        files.write_durably(self.path, name, files.parquet_bytes(table))
        self._seq += table.num_rows
        self._loaded.add(name)

    def _batch(self, frame: pd.DataFrame, source: str) -> pa.Table:
        """Check append_many rows and fill defaults; raises StoreError naming a bad row."""
        allowed = ["item_id", "label", "action", "annotator", "time", "source", "query", "target",
                   "event_id"]
        if not set(frame.columns) <= set(allowed):
            raise StoreError(f"append_many got columns {sorted(frame.columns)}; expected some "
                             f"of {allowed}")
        (now, tick), n = self._now(), len(frame)
        defaults = {"item_id": None, "label": None, "query": None, "target": None,
                    "action": "label", "annotator": self.annotator, "source": source}
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
            self._view()
            known = self._scope_log().set_index("event_id")
            stored = frame["target"].isin(known.index[known["action"].isin(views.UNDOABLE)])
            _check_rows(undo & ~stored, "undo needs a target that is a label, relabel, skip, "
                        f"remove or confirm event on branch {self.current_branch!r}", frame)
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
            event_ids = [self._check_new_id(None if pd.isna(e) else e) for e in given]
        except StoreError as err:
            raise StoreError(f"append_many: {err}") from None
        if len(set(event_ids)) != n:
            raise StoreError("append_many: the same event_id appears on two rows")
        # Rows given a time later than the clock keep it as their clock, so a batch of
        # imported history keeps its order; every other row sorts after all this handle has seen.
        clocks = times.dt.floor("us").clip(lower=pd.Timestamp(tick))
        self._saw_clock(clocks.max())
        return pa.table({
            **{c: _strings(frame[c], c) for c in defaults},
            "event_id": pa.array(event_ids, pa.string()),
            "time": pa.array(times.dt.floor("us"), pa.timestamp("us", tz="UTC")),
            "clock": pa.array(clocks, pa.timestamp("us", tz="UTC")),
            "writer": pa.array([self._writer] * n, pa.string()),
            "seq": pa.array(range(self._seq, self._seq + n), pa.int64()),
            "schema_version": pa.array([SCHEMA_VERSION] * n, pa.int16()),
            "branch": pa.array([self.current_branch] * n, pa.string()),
            "store_id": pa.array([self.store_id] * n, pa.string()),
        }).select(COLUMNS).cast(SCHEMA)

    def _log(self) -> pd.DataFrame:
        if self._pending:
            self._chunks.append(pa.Table.from_pylist(self._pending, schema=SCHEMA).to_pandas())
            self._pending = []
        if len(self._chunks) != 1:
            self._chunks = [pd.concat(self._chunks, ignore_index=True) if self._chunks
                            else SCHEMA.empty_table().to_pandas()]
        return self._chunks[0]

    def _refresh(self) -> None:
        """Read the files this handle has not seen: other writers' parts, new segments."""
        for _ in range(10):
            try:
                table, loaded = self._read_new()
            except FileNotFoundError:  # compacted away between listing and reading: list again
                continue
            self._loaded |= loaded
            if table is not None and table.num_rows:
                if table.num_rows > 1000:  # a bulk read (opening, a segment): straight to pandas
                    frame = table.to_pandas().drop_duplicates("event_id")
                    self._ingest(frame)
                    rows = frame
                else:  # a few events from another notebook: no DataFrame round trip
                    rows = list({r["event_id"]: r for r in table.to_pylist()}.values())
                    self._ingest_rows(rows)
                if self._unsynced is not None and isinstance(rows, pd.DataFrame):
                    self._unsynced.append(rows)  # (small batches were counted by _ingest_rows)
            return
        raise StoreError(f"files in {self.path} kept vanishing while reading it")

    def _read_new(self) -> tuple[pa.Table | None, set[str]]:
        new = set(files.list_names(self.path, ("part-", "segment-"))) - self._loaded
        tables, loaded = [], set()
        # Newest first: a segment that merged older ones makes reading those unnecessary.
        for name in sorted((n for n in new if n.startswith("segment-")), reverse=True):
            if name in loaded:
                continue
            merged = files.merged_parts(self.path / name)
            seen = merged & self._loaded
            if seen != merged:  # a segment of only seen parts holds nothing new
                table = _read(self.path, [name])
                if seen:
                    known = pa.array(self._log()["event_id"].to_numpy(), pa.string())
                    table = table.filter(pa.compute.invert(pa.compute.is_in(table["event_id"], known)))
                tables.append(table)
            loaded |= merged | {name}
        parts = new - loaded
        if parts:
            tables.append(_read(self.path, sorted(parts)))
        return (pa.concat_tables(tables) if tables else None), loaded | parts

    def _ingest(self, frame: pd.DataFrame) -> None:
        self._chunks.append(frame)
        self._saw_clock(frame["clock"].max())
        local = frame[_local_mask(frame, self.current_branch, self.store_id)]
        for writer, top in local.groupby("writer")["seq"].max().items():
            self._local_counts[writer] = max(self._local_counts.get(writer, 0), int(top) + 1)
        if len(frame) > 1000:  # rebuilding the view from the log beats folding row by row
            self._current, self._unfolded = None, []
        elif self._current is not None:
            self._unfolded.extend(frame.to_dict("records"))

    def _ingest_rows(self, rows: list[dict]) -> None:
        self._pending.extend(rows)
        self._saw_clock(max((r["clock"] for r in rows), default=None))
        if self._unsynced is not None:
            self._unsynced.append(rows)
        for row in rows:
            if _local(row, self.current_branch, self.store_id):
                w = row["writer"]
                self._local_counts[w] = max(self._local_counts.get(w, 0), row["seq"] + 1)
        if self._current is not None:
            self._unfolded.extend(rows)

    def _view(self) -> views.Latest:
        """The state of every item on this branch: built from the events in scope once, then
        folded forward; built again when the branch's head moves in a way this handle did not
        make itself (a teammate's merge, a pull)."""
        self._refresh()
        key, frontier = self._read_scope()
        rows, self._unfolded = self._unfolded, []
        # Events the scope's commits already hold may arrive after the view was built (a
        # teammate's commit read before its events, a pull): they are not changes since the
        # commit, so the view is built again rather than folding them in as new.
        late = any(row["seq"] < frontier.get(row["writer"], 0) for row in rows)
        if self._current is None or key != self._scope_key or len(rows) > 1000 or late:
            self._build_view(key, frontier)
        elif rows:
            rows = [row for row in rows if self._in_scope(row)]
            self._retracted.update(r["target"] for r in rows if r["action"] == "undo")
            self._current.fold(rows, self._scope_log, self._retracted)
        return self._current

    def _build_view(self, key: tuple, frontier: dict[str, int]) -> None:
        self._scope_key, self._frontier = key, frontier
        scope = self._scope_log()
        self._retracted = views.retracted_ids(scope)
        # What changed since the branch's last commit (a handle opened with uncommitted labels
        # must still count them in the next commit): the items the uncommitted events touch,
        # and their labels at the commit.
        head = self._commit_frontier(key[0])
        touched = scope.loc[~views.frontier_mask(scope, head), "item_id"].dropna().unique()
        at_head = views.as_of(scope[views.isin(scope["item_id"], touched)], head)
        before = views.labels(views.latest(at_head))["label"].to_dict()
        self._current = views.Latest(scope, self._retracted,
                                     marked={item: before.get(item) for item in touched})

    def _scope_log(self) -> pd.DataFrame:
        """The events this branch sees: those in its scope frontier (the head commit's, and
        during a merge the other side's too), and those written on this branch in this store."""
        log = self._log()
        mask = views.frontier_mask(log, self._frontier) | _local_mask(log, self.current_branch,
                                                                       self.store_id)
        return log[mask]

    def _in_scope(self, row: dict) -> bool:
        return row["seq"] < self._frontier.get(row["writer"], 0) or _local(row, self.current_branch,
                                                                            self.store_id)

    def _undo_target(self, target: str | None, item_id: str | None) -> dict:
        if target is None:
            raise StoreError("an undo must name the event it retracts: pass target=<event_id> "
                             "(see store.events())")
        self._view()  # up to date, so "already undone" counts every undo in scope
        row = self._find(target)
        if row is None or row["action"] not in views.UNDOABLE:
            raise StoreError(f"undo target {target!r} is not a label/relabel/skip/remove/confirm "
                             f"event in {self.path}")
        if not self._in_scope(row):
            raise StoreError(f"undo target {target!r} is an event of branch {row['branch']!r}, "
                             f"not of {self.current_branch!r}; open the store on that branch to undo it")
        if target in self._retracted:
            raise StoreError(f"undo target {target!r} is already undone")
        if item_id is not None and row["item_id"] != item_id:
            raise StoreError(f"undo target {target!r} is an event on item "
                             f"{row['item_id']!r}, not on item {item_id!r}")
        return row

    def _find(self, event_id: str) -> dict | None:
        """The event with this id, from memory (pending first: the latest appends)."""
        for row in reversed(self._pending):
            if row["event_id"] == event_id:
                return row
        log = self._log()
        rows = log[(log["event_id"] == event_id).to_numpy()]
        return None if rows.empty else _row(rows.iloc[0].to_dict())

    def _publish_compactions(self, older_than: float) -> set[str]:
        """Publish pending segments at least `older_than` seconds old (a rename), then delete
        the files published segments hold (parts, and segments a deep compaction merged);
        returns the names of all files some segment, pending or published, holds."""
        covered, published = set(), False
        now = time.time()
        for pending in files.list_names(self.path, (f"{PENDING}segment-",)):
            try:
                held = files.merged_parts(self.path / pending)
                age = now - (self.path / pending).stat().st_mtime
            except FileNotFoundError:
                continue
            if age >= older_than:
                os.rename(self.path / pending, self.path / pending[len(PENDING):])
                published = True
            else:
                covered |= held
        if published:
            files.fsync_dir(self.path)  # the segment is durable under its name before any delete
        present = set(files.list_names(self.path, ("part-", "segment-")))  # one listing, no stat each
        retired = set()
        for segment in (n for n in present if n.startswith("segment-")):
            try:
                held = files.merged_parts(self.path / segment)
            except FileNotFoundError:
                continue
            covered |= held
            retired |= held & present
        for name in retired:
            (self.path / name).unlink(missing_ok=True)
        if retired:
            files.fsync_dir(self.path)
        return covered


def _read(directory: Path, names: list[str]) -> pa.Table:
    table = files.read_parquet_files(directory, names, SCHEMA)
    # Events from before the causal clock (schema 1 and 2) were ordered by their wall time.
    ticks = pa.compute.coalesce(table["clock"], table["time"])
    return table.set_column(table.schema.get_field_index("clock"), "clock", ticks)


def _init_dir(path: Path) -> dict:
    """Check `path` is a store we can read (or create one there); return its metadata:
    schema_version and store_id (a store written by an older workbench is upgraded)."""
    if path.exists() and not path.is_dir():
        raise StoreError(f"LabelStore path {str(path)!r} is a file; expected a directory holding "
                         "a workbench label store, or a missing or empty one to create it in")
    meta = path / _META
    if meta.exists():
        info = read_meta(path)
        version = info.get("schema_version")
        if version < SCHEMA_VERSION or not info.get("store_id"):
            # Version 1 had no branches: its events (branch and home unset) read as this
            # store's main branch, so upgrading only records the new version and an id.
            info = {**info, "schema_version": SCHEMA_VERSION,
                    "store_id": info.get("store_id") or uuid.uuid4().hex}
            write_meta(path, info)
        return info
    path.mkdir(parents=True, exist_ok=True)
    files.fsync_dir(path.parent)  # the new directory's own entry must survive a crash too
    others = sorted(n for n in os.listdir(path) if not n.startswith("."))
    if others:
        raise StoreError(f"{str(path)!r} holds something else ({', '.join(others[:3])}"
                         f"{', ...' if len(others) > 3 else ''}); expected a workbench label "
                         f"store (with {_META}) or an empty directory")
    info = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "store_id": uuid.uuid4().hex}
    write_meta(path, info)
    return info


def read_meta(path: Path) -> dict:
    """A store's `_workbench.json`, checked: the format, and a version this workbench reads."""
    meta = Path(path) / _META
    try:
        info = json.loads(meta.read_text())
    except FileNotFoundError:
        raise StoreError(f"{str(path)!r} is not a workbench label store (no {_META})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(f"{str(meta)!r} is unreadable ({err}); expected the JSON "
                         f"metadata of a workbench label store") from err
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise StoreError(f"{str(path)!r} holds something else: {_META} does not say "
                         f"format {FORMAT!r}")
    version = info.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{str(path)!r} has schema_version {version!r}, but this workbench reads "
            f"versions 1 to {SCHEMA_VERSION}; upgrade workbench to open it")
    return info


def write_meta(path: Path, info: dict) -> None:
    files.write_durably(Path(path), _META, json.dumps(info, sort_keys=True).encode())


def _local_mask(log: pd.DataFrame, branch: str, store_id: str) -> np.ndarray:
    """Events written on `branch` in this store (events from before branches read as main)."""
    on = log["branch"].fillna(MAIN).to_numpy() == branch
    home = log["store_id"]
    return on & (home.isna() | (home == store_id)).to_numpy()


def _local(row: dict, branch: str, store_id: str) -> bool:
    home = row.get("store_id")
    return ((row.get("branch") or MAIN) == branch) and (_missing(home) or home == store_id)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _row(row: dict) -> dict:
    """A log row as a plain dict: missing values are None (not NaN)."""
    return {k: (None if _missing(v) else v) for k, v in row.items()}


def _default_annotator() -> str:
    try:
        return getpass.getuser() or "anonymous"
    except (KeyError, OSError, ImportError):  # no user name in the environment or passwd
        return "anonymous"


def _check_event(item_id, label, action, source, annotator, query, target) -> None:
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
