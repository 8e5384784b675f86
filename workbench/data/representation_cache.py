"""Where representations are kept: by fingerprint, the last few in memory and every one as
a .npz file in a cache folder (`WORKBENCH_CACHE_DIR`, else
`~/.cache/workbench/representations`), so reopening a notebook reuses it. A truncated or
foreign file is ignored (and rebuilt); a folder that cannot be written keeps them in memory.
A file is written under a temporary name and renamed whole; one that a killed process left
half-written (1 GB at 1,000,000 items) is removed by the next write, once STALE_SECONDS old
by the file system's clock, not this process's: on a shared folder, a machine whose clock
runs an hour ahead must not take another's write in progress for a leftover."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from workbench import file_clock
from workbench.data.feature_space import Representation

__all__ = ["RepresentationCache", "default_cache_dir"]

log = logging.getLogger(__name__)

STALE_SECONDS = 3600  # a write takes seconds: a temporary file this old was left by a killed one


def default_cache_dir() -> Path:
    root = os.environ.get("WORKBENCH_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "representations"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "workbench" / "representations"


class RepresentationCache:
    """Representations by fingerprint: the last few in memory, all on disk (`folder`;
    None keeps them in memory only)."""

    def __init__(self, folder: str | Path | None = None, *, in_memory: int = 4):
        self.folder = None if folder is None else Path(folder)
        self._memory: OrderedDict[str, Representation] = OrderedDict()
        self._in_memory = in_memory
        self._lock = threading.Lock()

    def in_memory(self, key: str) -> Representation | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        return None

    def file_size(self, key: str) -> int:
        """Bytes of the file that would be read for `key` (0: none)."""
        path = self._path(key)
        try:
            return 0 if path is None else path.stat().st_size
        except OSError:
            return 0

    def get(self, key: str) -> Representation | None:
        if (rep := self.in_memory(key)) is not None:
            return rep
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            rep = Representation.load(path)
        except Exception as e:  # noqa: BLE001 - a cache file is disposable: whatever is wrong, rebuild
            # a truncated, foreign or altered file
            log.warning("ignoring unreadable cached representation %s (%s)", path, e)
            return None
        if rep.fingerprint != key:
            return None
        self._remember(rep)
        return rep

    def put(self, rep: Representation) -> None:
        self._remember(rep)
        path = self._path(rep.fingerprint)
        if path is not None:
            try:
                self._remove_stale_writes()
                rep.save(path)
            except OSError as e:  # a read-only home (some hosted notebooks): memory only
                log.warning("could not cache the representation in %s (%s)", path, e)

    def _remember(self, rep):
        with self._lock:
            self._memory[rep.fingerprint] = rep
            self._memory.move_to_end(rep.fingerprint)
            while len(self._memory) > self._in_memory:
                self._memory.popitem(last=False)

    def _remove_stale_writes(self) -> None:
        # writing-*.tmp: Representation.save's; tmp*.tmp: its name before 2026-12-07
        leftovers = [*self.folder.glob("writing-*.tmp"), *self.folder.glob("tmp*.tmp")] \
            if self.folder.is_dir() else []
        if not leftovers:
            return
        now = file_clock.now_in(self.folder)
        for leftover in leftovers:
            try:
                if now - leftover.stat().st_mtime > STALE_SECONDS:
                    leftover.unlink()
            except OSError:  # another process removed it first, or it is not ours to remove
                pass

    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.npz"
