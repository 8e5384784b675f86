"""Claims: which items each open session is showing, so that two sessions on one store
(two people, or two notebooks of one person) are never served the same item.

Every session keeps one small JSON file in the store's `_claims/` folder listing the items
it holds (shown or prefetched, not yet labeled) and when that claim expires. A session that
picks new items does it under a flock on `_claims/.lock`: it reads the others' live claims
*first*, then the label log, then writes its own claim. A session lets an item go only after
its label is durable, so whoever reads the claims first and the log second sees an item
either as claimed or as labeled, never as free in between.

Claims are hints about the present, not history: they are written without fsync, a claim
of a process that is gone on this machine (a restarted kernel) is ignored at once, and one
from another machine that stops renewing it expires (`lease_s` after its file was last written,
by the file system's clock: machines' own clocks may be an hour apart). pyarrow and pandas skip
the folder (its name starts with "_"), so `pandas.read_parquet(store)` never sees it.

A claim file is rewritten in place, and only under the flock, which every reader holds too:
nobody reads it half written. Not a temp file renamed over it, as the label log does: creating
and renaming a file waits for the file system's journal, and while a training round (or anyone
else on the disk) fsyncs, that took 2.5 ms typically and tens of milliseconds at worst, on
every item served; a write in place 0.05 ms (benchmarks/next_latency.py). A file that a
crashed writer left unreadable counts as no claim, and is tidied away after a lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path

from workbench import file_clock
from workbench.store import files

FOLDER = "_claims"
LEASE_S = 120.0  # a claim not renewed for this long belongs to a dead session
RENEW_S = 30.0


class Claims:
    """One session's claim on items of a store, and a view of everyone else's."""

    def __init__(self, store_path: str | os.PathLike, *, annotator: str, lease_s: float = LEASE_S):
        self.folder = Path(store_path) / FOLDER
        self.folder.mkdir(exist_ok=True)
        files.clean_temp_files(self.folder)
        (self.folder / ".lock").touch()  # also the clock: `others` stamps it to read the time
        self.session = uuid.uuid4().hex[:16]
        self.annotator = annotator
        self.lease_s = lease_s
        self.held: set[str] = set()
        self._written: tuple[frozenset, float] | None = None  # what our file says, and when

    @contextlib.contextmanager
    def claiming(self):
        """Hold the claims lock; yields the items other live sessions claim (item -> their
        annotators, one per claiming session).

        Inside, read the label log, pick items, then call `hold(...)`: no other session can
        pick between our read of their claims and the write of ours.
        """
        with files.locked(self.folder / ".lock"):
            yield self.others()

    def others(self) -> dict[str, list[str]]:
        """Items claimed by other sessions whose claims have not expired: item -> the
        annotators of those sessions."""
        taken: dict[str, list[str]] = {}
        # A claim's age is its file's mtime against the file system's clock, never against
        # this machine's: a machine an hour ahead would take every live claim for a dead one
        now = file_clock.touch(self.folder / ".lock")
        for entry in os.scandir(self.folder):
            name = entry.name
            if not name.endswith(".json") or name.startswith(".") or name == f"{self.session}.json":
                continue
            try:
                claim = json.loads(Path(entry.path).read_text())
                written = entry.stat().st_mtime  # after the read: never older than what was read
            except FileNotFoundError:  # just released
                continue
            except ValueError:  # cut short by a crash while written: no claim; tidied after a lease
                _unlink_if_older(entry, now - self.lease_s)
                continue
            items = claim.get("items") if isinstance(claim, dict) else None
            if not isinstance(items, list):  # not a claim this workbench wrote: tidied after a lease
                _unlink_if_older(entry, now - self.lease_s)
                continue
            dead = claim.get("host") == _HOST and not _alive(claim.get("pid"))
            expires = written + _number(claim.get("lease_s"), self.lease_s)  # the writer's lease
            if dead or expires < now - self.lease_s:
                Path(entry.path).unlink(missing_ok=True)  # its session is gone: tidy up
            if dead or expires < now:
                continue
            annotator = str(claim.get("annotator", "?"))
            for item in items:
                if isinstance(item, str):
                    taken.setdefault(item, []).append(annotator)
        return taken

    def hold(self, item_ids) -> None:
        """Claim these items too (call inside `claiming()`)."""
        self.held.update(item_ids)
        self._write()

    def release(self, item_ids) -> None:
        """Stop claiming these items (after they are labeled, or no longer shown)."""
        before = len(self.held)
        self.held.difference_update(item_ids)
        if len(self.held) != before:
            with files.locked(self.folder / ".lock"):
                self._write()

    def forget(self, item_ids) -> None:
        """Drop items from the claim without rewriting it: for items whose label or skip is
        durable, which every session sees as done anyway. The next write leaves them out."""
        self.held.difference_update(item_ids)

    def renew(self) -> None:
        """Push the expiry forward when it is due (the session's watcher calls this)."""
        if self._written is None or _elapsed() - self._written[1] > RENEW_S:
            with files.locked(self.folder / ".lock"):
                self._write(force=True)

    def close(self) -> None:
        self.held.clear()
        (self.folder / f"{self.session}.json").unlink(missing_ok=True)

    def _write(self, force: bool = False) -> None:
        held = frozenset(self.held)
        if not force and self._written is not None and self._written[0] == held:
            return
        # Readers judge expiry by the file's mtime plus lease_s; "expires" (this machine's
        # clock) is for the readers of workbench before 2026-12-07
        claim = {"session": self.session, "annotator": self.annotator, "lease_s": self.lease_s,
                 "expires": time.time() + self.lease_s, "host": _HOST, "pid": os.getpid(),
                 "items": sorted(held)}
        data = json.dumps(claim).encode()
        # In place, under the flock (see the module's doc): open, write, cut, close; the close
        # also makes the write visible to other machines on a network file system.
        fd = os.open(self.folder / f"{self.session}.json", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        self._written = (held, _elapsed())


_HOST = socket.gethostname()


def _unlink_if_older(entry: os.DirEntry, before: float) -> None:
    try:
        if entry.stat().st_mtime < before:
            os.unlink(entry.path)
    except FileNotFoundError:
        pass


def _alive(pid) -> bool:
    """Whether a process of this machine is still running (a restarted kernel's is not)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    return True


def _number(value, default: float) -> float:
    """A claim file's number, or `default` when it is missing or not a positive number (a
    JSON integer too large for a float included)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return default
    try:
        value = float(value)
    except OverflowError:
        return default
    return value if 0 < value < float("inf") else default


def _elapsed() -> float:
    """Seconds on a clock that never jumps with the wall clock and, unlike time.monotonic,
    goes on while the machine sleeps: a laptop that wakes renews its claim at once."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()
