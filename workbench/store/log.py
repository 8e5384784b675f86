"""LabelStore: every labeling action as an immutable event in a directory of Parquet files.

Layout of a store directory::

    _workbench.json                  {"format": "workbench-labelstore", "schema_version": 1}
    part-<writer>-<seq>.parquet      one small file per append() / append_many() / retract()
    segment-<stamp>-<id>.parquet     parts merged by compact(); its metadata lists them
    _pending-segment-<stamp>-<id>.parquet  a compaction not published yet (compaction.py)
    _claims/                         which items each open session is showing (claims.py)
    .tmp-*                           files being written; every reader ignores them
    .compact.lock                    flock that lets one process at a time compact
    .init.lock                       flock that lets one process at a time make or upgrade it
    _log_stamp                       a token every writer of event files replaces (files.STAMP)

Why this shape:
- Every acknowledged event lives in a plain ``.parquet`` file, so ``pandas.read_parquet(path)``
  reads the whole log with no help from us (pyarrow skips names starting with "." or "_").
- An append writes one new file and touches no other, so its cost does not grow with the
  store; several notebooks can write at once because each handle has its own writer id in
  its file names; and events never change once written, which is what history (commit,
  diff, checkout) needs. Events are totally ordered by (clock, writer, seq): `clock` is a
  hybrid logical clock (see clock.py), so order is causal whatever the machines' wall clocks
  say; `time` is the wall clock, kept for people to read.
- compact() merges parts into a segment that readers see only after a grace period, then
  deletes the parts (compaction.py): a crash anywhere in between leaves duplicates, which
  readers drop, never a loss.
- An undo names the event it retracts (`target`); nothing in the store means "the latest".

In memory, a handle keeps the log it has read and, on each read call, lists the directory
and reads only the files it has not seen (`sync()` returns those events). The current view
(workbench.store.views) is built from the log once, then folded forward with new events.

This module is the handle: its state, opening a store, and the list of its verbs. The verbs
are functions of the handle in the modules that do them: writing (append, undo, retract,
append_many), reading (the log in memory, and the events in it), scope (this branch's
view: current labels, states, sync), compaction, meta (`_workbench.json`), and the history
verbs gathered by `History` (workbench.store.history). What an event is: schema.py.
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from workbench.store import compaction, files, reading, recovery, scope, views, writer_clock, writing
from workbench.store.compaction import AUTO_COMPACT_PARTS, MAX_SEGMENTS, PENDING, RETIRE_AFTER_S
from workbench.store.errors import SchemaVersionError, StoreError, make_branch
from workbench.store.graph import HISTORY
from workbench.store.history import History
from workbench.store.meta import FORMAT, init_dir, read_meta, update_meta, write_meta
from workbench.store.refs import MAIN, check_name
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

ORDER = views.ORDER

# What this module offered before its parts moved out, importable from here as before.
__all__ = ["ACTIONS", "AUTO_COMPACT_PARTS", "COLUMNS", "EVENT_ID", "FORMAT", "MAIN", "MAX_SEGMENTS",
           "ORDER", "PENDING", "PROVENANCE", "RETIRE_AFTER_S", "SCHEMA", "SCHEMA_VERSION", "SOURCES",
           "Event", "History", "LabelStore", "SchemaVersionError", "StoreError", "check_name",
           "make_branch", "read_meta", "update_meta", "write_meta"]


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
        writer_clock.new_writer(self)  # sets _writer, _pid and _seq
        self._clock = datetime.min.replace(tzinfo=timezone.utc)  # the latest clock seen or given
        self._loaded: set[str] = set()  # files whose events are in memory (or covered by one)
        self._stamp_seen: bytes | None = None  # the log stamp at the last listing (files.STAMP)
        self._chunks: list[pd.DataFrame] = []  # the in-memory log, lazily concatenated
        self._pending: list[dict] = []  # this handle's single appends, not yet in _chunks
        self._retracted: set[str] = set()  # event ids that some undo in scope targets
        self._scope_key: tuple | None = None  # (head commit, merging commit) the view is of
        self._frontier: dict[str, int] = {}  # events of the scope by (writer, seq), see scope.in_scope
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
        store = cls(path, annotator or _default_annotator(), init_dir(path), branch)
        if branch != MAIN and branch not in store.branches()["branch"].tolist():
            raise StoreError(f"no branch {branch!r} in {path}; branches: "
                             f"{', '.join(store.branches()['branch'])} (make one with ",
                             make_branch(branch), ")")
        files.clean_temp_files(path)
        history_dir = path / HISTORY
        for folder, _, _ in os.walk(history_dir) if history_dir.is_dir() else ():
            files.clean_temp_files(Path(folder))  # a ref or commit a killed writer left half made
        store.compact(min_parts=compaction.AUTO_COMPACT_PARTS + 1)  # also finishes interrupted compactions
        recovery.finish_interrupted(store)  # a merge, revert or restore killed half way
        return store

    @classmethod
    def reader(cls, path: str | os.PathLike, *, branch: str = MAIN) -> LabelStore:
        """A handle that only reads: another store's files during a pull, push or clone.
        Unlike open(), it creates nothing, compacts nothing, finishes nothing; a path that
        holds no store is a StoreError."""
        path = Path(path)
        return cls(path, _default_annotator(), read_meta(path), check_name(branch, "branch"))

    # -- writing (writing.py) ------------------------------------------------------------------
    append = writing.append
    undo = writing.undo
    retract = writing.retract
    append_many = writing.append_many

    # -- reading (reading.py: the log; scope.py: this branch's view of it) ----------------------
    sync = scope.sync
    events = reading.events
    events_of = reading.events_of
    missing_events = reading.missing_events
    event = reading.event
    current_labels = scope.current_labels
    confirmations = scope.confirmations
    began_in = scope.began_in
    skipped = scope.skipped
    states = scope.states

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

    def compact(self, *, min_parts: int = 2, retire_after: float | None = None) -> int:
        """Merge loose part files into one segment; returns how many parts it merged. The
        segment is published, and the parts it holds deleted, once it is `retire_after`
        seconds old (default RETIRE_AFTER_S; 0: at once, when no other process may be
        reading); until then it waits under a name readers skip.

        Returns 0 without waiting when another process holds the compaction lock.
        """
        return compaction.compact(self.path, min_parts=min_parts, retire_after=retire_after)

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return sum(map(len, self._chunks)) + len(self._pending)

    def bind(self, *, classes: list[str], items_hash: str, n_items: int, task: str = "single") -> None:
        """Tie the store to a pool, a class set and a task (what one label is: see
        workbench.data.tasks) the first time a session opens it; later, refuse a session (or a
        push, a pull) of another class set or task. A pool that gained or lost items is
        allowed: labels point at item ids, which stay valid. Stores from before tasks hold
        single-label labels."""
        def bound(meta: dict) -> dict:
            bound_task = meta.get("task", "single")
            if bound_task != task and (meta.get("classes") is not None or "task" in meta):
                raise StoreError(f"store {self.path} holds {bound_task!r} labels, not {task!r} ones; "
                                 f"open another store for a {task!r} pool")
            bound = meta.get("classes")
            if bound is not None and list(bound) != list(classes):
                raise StoreError(f"store {self.path} holds labels of the classes {bound}, not "
                                 f"{list(classes)}; open another store for this class set")
            pool = {"items_hash": items_hash, "n_items": n_items}
            if bound is None or meta.get("pool") != pool or meta.get("task", "single") != task:
                return {**meta, "classes": list(classes), "pool": pool,
                        **({} if task == "single" else {"task": task})}
            return meta

        with self._lock:
            update_meta(self.path, bound)  # two sessions binding at once: the second is checked

    def __repr__(self) -> str:
        return (f"LabelStore({str(self.path)!r}, branch={self.current_branch!r}, "
                f"annotator={self.annotator!r}, events={len(self)}, writer={self._writer!r})")

    # -- internals the history modules (and sync.py, tests) call on a handle --------------------
    _refresh = reading.refresh
    _find = reading.find
    _all_events = reading.all_events
    _view = scope.branch_view
    _scope_log = scope.scope_log  # also the view's way to the events in scope, when it folds


def _default_annotator() -> str:
    try:
        return getpass.getuser() or "anonymous"
    except (KeyError, OSError, ImportError):  # no user name in the environment or passwd
        return "anonymous"
