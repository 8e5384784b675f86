"""LabelStore: every labeling action as an immutable event in a directory of Parquet files.

Layout of a store directory::

    _workbench.json                  {"format": "workbench-labelstore", "schema_version": 1}
    part-<writer>-<seq>.parquet      one small file per append() / append_many() call
    segment-<stamp>-<id>.parquet     parts merged by compact(); its metadata lists them
    .tmp-*                           files being written; every reader ignores them
    .compact.lock                    flock that lets one process at a time compact

Why this shape:
- Every acknowledged event lives in a plain ``.parquet`` file, so ``pandas.read_parquet(path)``
  reads the whole log with no help from us (pyarrow skips names starting with "." or "_").
- An append writes one new file and touches no other, so its cost does not grow with the
  store; several notebooks can write at once because each handle has its own writer id in
  its file names; and events never change once written, which is what history (commit,
  diff, checkout) needs. Events are totally ordered by (time, writer, seq).
- Durability: write a dot-temp file, fsync it, rename it, fsync the directory. A process
  killed mid-write leaves only a temp file, which readers ignore and open() removes; a name
  without a dot is never half written.
- compact() writes the merged segment before it deletes the parts, so a crash in between
  leaves duplicates, never a loss: our readers skip parts a segment lists (and dedupe by
  event_id), and open() finishes the job.

In memory, a handle keeps the log it has read and on each read call lists the directory and
reads only the files it has not seen. current_labels() is a view (latest effective event per
item) built from the log once, then updated with only the events that arrived since.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import threading
import time as _time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
FORMAT = "workbench-labelstore"
ACTIONS = ("label", "skip", "undo", "relabel")
SOURCES = ("human", "suggestion", "import", "simulated")
UNDOABLE = ("label", "relabel", "skip")  # the actions that decide an item's state
ORDER = ["time", "writer", "seq"]
VIEW = ["label", "annotator", "time", "source", "query", "event_id"]
AUTO_COMPACT_PARTS = 500  # open() compacts above this many loose parts, so reopening stays fast
STALE_EMPTY_TMP_S = 10  # an empty temp file this young may belong to a writer about to lock it
_META = "_workbench.json"
_MERGED = b"workbench.merged"

SCHEMA = pa.schema([
    ("event_id", pa.string()), ("item_id", pa.string()), ("label", pa.string()),
    ("action", pa.string()), ("annotator", pa.string()), ("time", pa.timestamp("us", tz="UTC")),
    ("source", pa.string()), ("target", pa.string()), ("query", pa.string()),
    ("writer", pa.string()), ("seq", pa.int64()), ("schema_version", pa.int16()),
])
COLUMNS = SCHEMA.names


class StoreError(ValueError):
    """A store path, event or request that the label store cannot accept."""


class SchemaVersionError(StoreError):
    """The store was written by a newer workbench than this one."""


@dataclass(frozen=True)
class Event:
    """One row of the log, as returned by append() and undo()."""

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


class LabelStore:
    """Append-only label events in Parquet; current labels are a view of the log."""

    def __init__(self, path: Path, annotator: str, version: int):
        """Use LabelStore.open(); this only sets up in-memory state."""
        self.path, self.annotator, self.version = path, annotator, version
        self._lock = threading.RLock()  # a background thread may append while the UI does
        self._new_writer()  # sets _writer, _pid and _seq
        self._last_time = datetime.min.replace(tzinfo=timezone.utc)
        self._loaded: set[str] = set()  # files whose events are in memory (or covered by one)
        self._chunks: list[pd.DataFrame] = []  # the in-memory log, lazily concatenated
        self._pending: list[dict] = []  # this handle's single appends, not yet in _chunks
        self._retracted: set[str] = set()  # event ids that some undo targets
        self._current: pd.DataFrame | None = None  # see _view(); None until first needed
        self._unfolded: list[dict] = []  # events not yet folded into _current

    @classmethod
    def open(cls, path: str | os.PathLike, *, annotator: str | None = None) -> LabelStore:
        """Open the store at `path`, creating it if `path` is missing or an empty directory."""
        path = Path(path)
        store = cls(path, annotator or _default_annotator(), _init_dir(path))
        store._clean_temp_files()
        store.compact(min_parts=AUTO_COMPACT_PARTS + 1)  # also finishes interrupted compactions
        return store

    def append(self, item_id: str, label: str | None = None, *, action: str = "label",
               source: str = "human", annotator: str | None = None, query: str | None = None,
               target: str | None = None) -> Event:
        """Write one event durably (fsynced) before returning it."""
        with self._lock:
            annotator = annotator or self.annotator
            _check_event(item_id, label, action, source, annotator, query, target)
            if action == "undo":
                retracted = self._undo_target(annotator, item_id, target)
                item_id, target = retracted["item_id"], retracted["event_id"]
            now = self._now()  # first: a forked child gets its own writer and seq here
            event = Event(uuid.uuid4().hex, item_id, label, action, annotator, now, source,
                          target, query, self._writer, self._seq, SCHEMA_VERSION)
            row = asdict(event)
            self._write_part(pa.Table.from_pylist([row], schema=SCHEMA))
            self._pending.append(row)
            if action == "undo":
                self._retracted.add(target)
            if self._current is not None:  # folded in by the next current_labels(), not here
                self._unfolded.append(row)
            return event

    def append_many(self, records: list[dict] | pd.DataFrame, *, source: str = "import"
                    ) -> list[str]:
        """Write many events as one file (imports, benchmarks); returns their event ids.

        Columns: item_id (required; may be left out for undo rows), label, action, annotator,
        time (ISO 8601 or datetime; naive means UTC; default now), source, query, target.
        Every row is checked before anything is written.
        """
        with self._lock:
            frame = pd.DataFrame(records).reset_index(drop=True)
            if frame.empty:
                return []
            table = self._batch(frame, source)
            self._write_part(table)
            self._ingest(table.to_pandas())
            return table["event_id"].to_pylist()

    def undo(self, annotator: str | None = None) -> Event:
        """Retract the annotator's latest label/relabel/skip that is not already undone."""
        return self.append(None, action="undo", annotator=annotator)

    def events(self) -> pd.DataFrame:
        """The whole log, re-read from disk for new files, sorted by (time, writer, seq)."""
        with self._lock:
            self._refresh()
            return self._log().sort_values(ORDER, ignore_index=True)

    def current_labels(self) -> pd.DataFrame:
        """Per item_id, the latest label/relabel that no undo retracts and no skip follows.

        Rows come in the order they were labeled: by (time, writer, seq).
        """
        with self._lock:
            view = self._view()
            return view.loc[(view["action"] != "skip").to_numpy(), VIEW]

    def skipped(self) -> set[str]:
        """Items whose latest effective event is a skip."""
        with self._lock:
            view = self._view()
            return set(view.index[(view["action"] == "skip").to_numpy()])

    def compact(self, *, min_parts: int = 2) -> int:
        """Merge loose part files into one segment; returns how many parts it merged.

        Returns 0 without waiting when another process holds the compaction lock.
        """
        fd = os.open(self.path / ".compact.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            self._finish_compactions()
            parts = sorted(self._names("part-"))
            if len(parts) < min_parts:
                return 0
            table = _read(self.path, parts).sort_by([(c, "ascending") for c in ORDER])
            table = table.replace_schema_metadata({_MERGED: json.dumps(parts)})
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
            _write_durably(self.path, f"segment-{stamp}-{uuid.uuid4().hex[:12]}.parquet",
                           _parquet(table))
            for part in parts:  # only now: until here the parts are the only copy
                (self.path / part).unlink(missing_ok=True)
            _fsync_dir(self.path)
            return len(parts)
        finally:
            os.close(fd)  # closing releases the flock

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return sum(map(len, self._chunks)) + len(self._pending)

    def __repr__(self) -> str:
        return (f"LabelStore({str(self.path)!r}, annotator={self.annotator!r}, "
                f"events={len(self)}, writer={self._writer!r})")

    # -- internals -------------------------------------------------------------------------

    def _new_writer(self) -> None:
        self._writer, self._pid, self._seq = uuid.uuid4().hex[:16], os.getpid(), 0

    def _now(self) -> datetime:
        """Time for the next event: never before this writer's last one, so its order holds."""
        if os.getpid() != self._pid:  # a forked child must not reuse its parent's file names
            self._new_writer()
        self._last_time = max(datetime.now(timezone.utc), self._last_time)
        return self._last_time

    def _write_part(self, table: pa.Table) -> None:
        name = f"part-{self._writer}-{self._seq:012d}.parquet"
        _write_durably(self.path, name, _parquet(table))
        self._seq += table.num_rows
        self._loaded.add(name)

    def _batch(self, frame: pd.DataFrame, source: str) -> pa.Table:
        """Check append_many rows and fill defaults; raises StoreError naming a bad row."""
        allowed = ["item_id", "label", "action", "annotator", "time", "source", "query", "target"]
        if not set(frame.columns) <= set(allowed):
            raise StoreError(f"append_many got columns {sorted(frame.columns)}; expected some "
                             f"of {allowed}")
        now, n = self._now(), len(frame)
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
        if undo.any():  # an undo row must point at a stored event, and takes that event's item
            known = self.events().set_index("event_id")
            stored = frame["target"].isin(known.index[known["action"].isin(UNDOABLE)])
            _check_rows(undo & ~stored, "undo needs a target that is a stored label, relabel "
                        "or skip event", frame)
            frame["item_id"] = frame["item_id"].where(~undo, frame["target"].map(known["item_id"]))
        needs_label = frame["action"].isin(["label", "relabel"])
        _check_rows(frame["item_id"].isna() | (frame["item_id"] == ""), "item_id is missing",
                    frame)
        _check_rows(needs_label & frame["label"].isna(), "label/relabel needs a label", frame)
        _check_rows(~needs_label & frame["label"].notna(), "only label/relabel carry a label",
                    frame)
        _check_rows(~undo & frame["target"].notna(), "only undo carries a target", frame)
        return pa.table({
            **{c: _strings(frame[c], c) for c in defaults},
            "event_id": pa.array([uuid.uuid4().hex for _ in range(n)], pa.string()),
            "time": pa.array(times.dt.floor("us"), pa.timestamp("us", tz="UTC")),
            "writer": pa.array([self._writer] * n, pa.string()),
            "seq": pa.array(range(self._seq, self._seq + n), pa.int64()),
            "schema_version": pa.array([SCHEMA_VERSION] * n, pa.int16()),
        }).select(COLUMNS).cast(SCHEMA)

    def _names(self, prefix: str = "") -> list[str]:
        return [e.name for e in os.scandir(self.path)
                if e.name.startswith(prefix or ("part-", "segment-"))
                and e.name.endswith(".parquet")]

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
                frames, loaded = self._read_new()
            except FileNotFoundError:  # compacted away between listing and reading: list again
                continue
            self._loaded |= loaded
            if frames:
                self._ingest(pd.concat(frames, ignore_index=True).drop_duplicates("event_id"))
            return
        raise StoreError(f"files in {self.path} kept vanishing while reading it")

    def _read_new(self) -> tuple[list[pd.DataFrame], set[str]]:
        new = set(self._names()) - self._loaded
        frames, loaded = [], set()
        for name in sorted(n for n in new if n.startswith("segment-")):
            merged = _merged_parts(self.path / name)
            seen = merged & self._loaded
            if seen != merged:  # a segment of only seen parts holds nothing new
                frame = _read(self.path, [name]).to_pandas()
                if seen:
                    frame = frame[~frame["event_id"].isin(self._log()["event_id"]).to_numpy()]
                frames.append(frame)
            loaded |= merged | {name}
        parts = new - loaded
        if parts:
            frames.append(_read(self.path, sorted(parts)).to_pandas())
        return frames, loaded | parts

    def _ingest(self, frame: pd.DataFrame) -> None:
        self._chunks.append(frame)
        self._retracted.update(frame.loc[(frame["action"] == "undo").to_numpy(), "target"])
        if len(frame) > 1000:  # rebuilding the view from the log beats folding row by row
            self._current, self._unfolded = None, []
        elif self._current is not None:
            self._unfolded.extend(frame.to_dict("records"))

    def _effective(self, log: pd.DataFrame, **equal: str) -> np.ndarray:
        """Mask of rows that decide an item's state (label/relabel/skip, not undone)."""
        mask = log["action"].isin(UNDOABLE) & ~log["event_id"].isin(self._retracted)
        for column, value in equal.items():
            mask &= log[column] == value
        return mask.to_numpy()  # numpy masks: boolean Series indexing is slow on 1M rows

    def _view(self) -> pd.DataFrame:
        """The latest effective event per item, sorted by (time, writer, seq).

        Built from the whole log once, then updated with only the events seen since.
        """
        self._refresh()
        rows, self._unfolded = self._unfolded, []
        if self._current is None or len(rows) > 1000:
            log = self._log()
            latest = log[self._effective(log)].sort_values(ORDER)
            latest = latest.drop_duplicates("item_id", keep="last").set_index("item_id")
            self._current = latest[[*VIEW, "action", "writer", "seq"]]
        elif rows:
            self._current = self._fold(self._current, rows)
        return self._current

    def _fold(self, current: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
        """Apply new events to the view; the result does not depend on their order."""
        # isin() over the big index hashes only the few items: `item in index` would hash it all
        touched = current.index.isin([row["item_id"] for row in rows])
        tops, changed = current[touched].to_dict("index"), set()  # item -> latest event
        for row in rows:
            item, old = row["item_id"], tops.get(row["item_id"])
            if row["action"] == "undo":
                if old is not None and old["event_id"] == row["target"]:
                    log = self._log()  # the undone event was on top: find the one below it
                    tops[item] = _last(log, self._effective(log, item_id=item))
                    changed.add(item)
            elif row["event_id"] not in self._retracted and (old is None or _key(row) > _key(old)):
                tops[item] = row
                changed.add(item)
        kept = current[~current.index.isin(list(changed))]
        new = sorted((tops[item] for item in changed if tops[item] is not None), key=_key)
        frame = pd.DataFrame(new, columns=["item_id", *current.columns]).set_index("item_id")
        merged = pd.concat([kept, frame.astype(current.dtypes.to_dict())])
        in_order = kept.empty or not new or _key(kept.iloc[-1]) <= _key(new[0])
        return merged if in_order else merged.sort_values(ORDER)

    def _undo_target(self, annotator: str, item_id: str | None, target: str | None) -> dict:
        self._refresh()
        log = self._log()
        if target is not None:
            rows = log[(log["event_id"] == target).to_numpy()]
            if rows.empty or rows["action"].iloc[0] not in UNDOABLE:
                raise StoreError(f"undo target {target!r} is not a label/relabel/skip event in "
                                 f"{self.path}")
            if target in self._retracted:
                raise StoreError(f"undo target {target!r} is already undone")
            if item_id is not None and rows["item_id"].iloc[0] != item_id:
                raise StoreError(f"undo target {target!r} is an event on item "
                                 f"{rows['item_id'].iloc[0]!r}, not on item {item_id!r}")
            return rows.iloc[0].to_dict()
        on_item = {} if item_id is None else {"item_id": item_id}
        latest = _last(log, self._effective(log, annotator=annotator, **on_item))
        if latest is None:
            on = f" on item {item_id!r}" if on_item else ""
            raise StoreError(f"nothing to undo for annotator {annotator!r}{on} in {self.path}: "
                             "no label, relabel or skip event that is not already undone")
        return latest

    def _clean_temp_files(self) -> None:
        """Remove temp files of killed writers; a live writer holds a flock on its temp file."""
        for entry in os.scandir(self.path):
            if not entry.name.startswith(".tmp-"):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY)
            except FileNotFoundError:  # its writer just renamed it
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                st = os.fstat(fd)
                if st.st_size or _time.time() - st.st_mtime > STALE_EMPTY_TMP_S:
                    os.unlink(entry.path)
            except (BlockingIOError, FileNotFoundError):  # live writer, or it just finished
                pass
            finally:
                os.close(fd)

    def _finish_compactions(self) -> None:
        """Delete parts that a finished segment already holds (a compaction cut short)."""
        leftovers = [self.path / p for s in self._names("segment-")
                     for p in _merged_parts(self.path / s) if (self.path / p).exists()]
        for part in leftovers:
            part.unlink(missing_ok=True)
        if leftovers:
            _fsync_dir(self.path)


def _init_dir(path: Path) -> int:
    """Check `path` is a store we can read (or create one there); return its schema version."""
    if path.exists() and not path.is_dir():
        raise StoreError(f"LabelStore path {str(path)!r} is a file; expected a directory holding "
                         "a workbench label store, or a missing or empty one to create it in")
    meta = path / _META
    if meta.exists():
        try:
            info = json.loads(meta.read_text())
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
        return version
    path.mkdir(parents=True, exist_ok=True)
    _fsync_dir(path.parent)  # the new directory's own entry must survive a crash too
    others = sorted(n for n in os.listdir(path) if not n.startswith("."))
    if others:
        raise StoreError(f"{str(path)!r} holds something else ({', '.join(others[:3])}"
                         f"{', ...' if len(others) > 3 else ''}); expected a workbench label "
                         f"store (with {_META}) or an empty directory")
    info = {"format": FORMAT, "schema_version": SCHEMA_VERSION}
    _write_durably(path, _META, json.dumps(info).encode())
    return SCHEMA_VERSION


def _write_durably(directory: Path, name: str, data: bytes | pa.Buffer) -> None:
    """temp file -> fsync -> rename -> fsync dir: `name` is either absent or complete."""
    tmp = directory / f".tmp-{uuid.uuid4().hex[:8]}-{name}"
    try:
        with open(tmp, "xb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # tells _clean_temp_files elsewhere this file is live
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.rename(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the rename itself durable
    finally:
        os.close(fd)


def _parquet(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    # compression, statistics and dictionaries buy nothing for a row or two, and halve the time
    small = {"compression": "none", "write_statistics": False, "use_dictionary": False}
    pq.write_table(table, sink, **(small if table.num_rows < 100 else {}))
    return sink.getvalue()


def _read(directory: Path, names: list[str]) -> pa.Table:
    """Read many files in one multi-threaded pass (a file at a time costs ~2 ms each)."""
    files = [str(directory / n) for n in names]
    return ds.dataset(files, format="parquet", schema=SCHEMA).to_table(columns=COLUMNS)


def _merged_parts(segment: Path) -> set[str]:
    return set(json.loads((pq.read_schema(segment).metadata or {}).get(_MERGED, b"[]")))


def _last(log: pd.DataFrame, mask: np.ndarray) -> dict | None:
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


def _key(row: dict) -> tuple:
    return pd.Timestamp(row["time"]), row["writer"], row["seq"]


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
              ("label", label, action not in ("label", "relabel")), ("query", query, True),
              ("target", target, True)]
    for name, value, optional in checks:
        if not (isinstance(value, str) and value) and not (optional and value is None):
            raise StoreError(f"{name} must be a non-empty str{' or None' if optional else ''} "
                             f"for a {action!r} event (map classes to str yourself), got "
                             f"{type(value).__name__} {value!r}")
    if label is not None and action not in ("label", "relabel"):
        raise StoreError(f"a {action!r} event carries no label, got label={label!r}")
    if target is not None and action != "undo":
        raise StoreError(f"only an undo event has a target, got target={target!r} for {action!r}")


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
