"""The only module of the store that touches the disk: durable writes, reads, locks.

A name without a leading dot is never half written: every file is written as a dot-temp
file, fsynced, renamed into place, and then the directory is fsynced so that the rename
itself survives a crash. A writer holds a flock on its temp file while writing, which tells
`clean_temp_files` in another process that the file is live, not left by a killed writer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import uuid
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from workbench import file_clock

STALE_EMPTY_TMP_S = 10  # an empty temp file this young may belong to a writer about to lock it
MERGED_KEY = b"workbench.merged"  # segment metadata: the part files it holds


def write_durably(directory: Path, name: str, data: bytes | pa.Buffer, *, sync: bool = True,
                  sync_dir: bool = True) -> None:
    """temp file -> fsync -> rename -> fsync dir: `name` is either absent or complete.

    `sync=False` skips both fsyncs, for files that are only hints (claims): a crash may then
    lose the file's latest version, but never leaves a half-written one under its name.
    `sync_dir=False` leaves the directory's fsync to the caller, who writes several files
    and then calls `fsync_dir` once before anything depends on them (a pull's copies).
    """
    tmp = directory / f".tmp-{uuid.uuid4().hex[:8]}-{name}"
    try:
        with open(tmp, "xb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # tells clean_temp_files elsewhere this file is live
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
            os.rename(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync and sync_dir:
        fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes a rename or unlink in it durable
    finally:
        os.close(fd)


def parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    # compression, statistics and dictionaries buy nothing for a row or two, and halve the time
    small = {"compression": "none", "write_statistics": False, "use_dictionary": False}
    pq.write_table(table, sink, **(small if table.num_rows < 100 else {}))
    return sink.getvalue()


def read_parquet_files(directory: Path, names: list[str], schema: pa.Schema) -> pa.Table:
    """Read many files in one multi-threaded pass (a file at a time costs ~2 ms each)."""
    files = [str(directory / n) for n in names]
    return ds.dataset(files, format="parquet", schema=schema).to_table(columns=schema.names)


def merged_parts(segment: Path) -> set[str]:
    """The part files a compacted segment holds (from its metadata). A segment never changes
    once written under its name (which holds a random id), so what it holds is kept."""
    key = str(segment)
    held = _MERGED.get(key)
    if held is None:
        held = frozenset(json.loads((pq.read_schema(segment).metadata or {}).get(MERGED_KEY, b"[]")))
        if len(_MERGED) > 100_000:
            _MERGED.clear()
        _MERGED[key] = held
    return set(held)


_MERGED: dict[str, frozenset] = {}  # segment path -> the parts it holds


def list_names(directory: Path, prefixes: tuple[str, ...], suffix: str = ".parquet") -> list[str]:
    return [e.name for e in os.scandir(directory)
            if e.name.startswith(prefixes) and e.name.endswith(suffix)]


def clean_temp_files(directory: Path) -> None:
    """Remove temp files of killed writers; a live writer holds a flock on its temp file."""
    now = None  # the file system's time, probed once if an empty temp file needs judging
    for entry in os.scandir(directory):
        if not entry.name.startswith(".tmp-"):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:  # its writer just renamed it
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            st = os.fstat(fd)
            if not st.st_size and now is None:
                try:
                    now = file_clock.now_in(directory)  # not time.time(): a clock off by an hour
                except OSError:  # a folder we cannot write to: nothing in it is ours to remove
                    return
            if st.st_size or now - st.st_mtime > STALE_EMPTY_TMP_S:
                os.unlink(entry.path)
        except (BlockingIOError, FileNotFoundError):  # live writer, or it just finished
            pass
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(path: Path, *, wait: bool = True):
    """An exclusive flock on `path` (created if missing) for the `with` block.

    Yields True when held; with `wait=False` yields False at once if another process holds it.
    Closing the descriptor releases the lock, also when the process dies.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            if wait or err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield False
            return
        yield True
    finally:
        os.close(fd)


# -- the log stamp: whether any writer published event files since a handle last looked ----
# Listing the folder to find new event files costs a system call per file in it (hundreds
# while a session labels: parts are merged only on open), and each releases the GIL: during
# a background round, next() waited for it back after every one (benchmarks/next_latency.py).
# Every writer that publishes event files (an append, a pull's copy) replaces the stamp, a
# random token, after the files are in place, and before the labeler's claim is released
# (loop/serving.py reads claims first, the log second); a handle that finds the token it
# saw at its last listing knows nothing was published since. Under a flock, so that nobody
# reads a token half written; a token, not a counter, so that a stamp rewritten from scratch
# (deleted, or garbled by hand) never reads as one seen before.
STAMP = "_log_stamp"  # "_": pyarrow and pandas skip it


def bump_stamp(directory: Path) -> tuple[bytes | None, bytes | None]:
    """Replace the log stamp of the store at `directory`: (the token it held, the new one).
    A stamp that cannot be written (something else in its place, a file system without
    flock) is left as it is, with a warning, and (None, None) returned: the event files are
    already durable, and readers then find them at their next full listing."""
    token = uuid.uuid4().hex.encode()
    try:
        fd = os.open(directory / STAMP, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            before = os.pread(fd, 64, 0)
            os.pwrite(fd, token, 0)
            os.ftruncate(fd, len(token))
        finally:
            os.close(fd)  # releases the flock, also when the process dies
    except OSError as err:
        warnings.warn(f"could not stamp the log of {directory} ({err}); other sessions on it see "
                      f"new labels at their next full look (twice a second) instead of at once",
                      RuntimeWarning, stacklevel=2)
        return None, None
    return before or None, token


def read_stamp(directory: Path) -> bytes | None:
    """The log stamp's token; None when there is none (a store no writer has stamped yet) or
    it cannot be read: then the folder is listed."""
    try:
        fd = os.open(directory / STAMP, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return os.pread(fd, 64, 0) or None
    except OSError:
        return None
    finally:
        os.close(fd)
