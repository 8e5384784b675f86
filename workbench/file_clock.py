"""The file system's clock: the one to judge a file's age by.

A label store or a representation cache may live on a folder several machines share, and
their clocks disagree (an hour is common: a laptop in the wrong time zone mode, a VM that
slept). A file's mtime is stamped by the file system, on a network file system by the
server, whatever the writer's clock says; so "is this file old?" compares its mtime with
the file system's own now, never with `time.time()`. Otherwise a machine an hour ahead
removes another's write in progress, or takes a live session's claim for a dead one.

Used by the store (`workbench.store`) and by the representation cache (`workbench.data`):
it sits below both.
"""

from __future__ import annotations

import os
import tempfile


def now_in(folder: str | os.PathLike) -> float:
    """The time now by the clock that stamps files in `folder`: the mtime of a file made
    there now (a hidden probe, removed at once; pyarrow and pandas skip dot-files)."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".clock-", suffix=".probe") as probe:
        return os.fstat(probe.fileno()).st_mtime


def touch(path: str | os.PathLike) -> float:
    """Set `path`'s mtime to now and return it (made if missing): the cheap probe, for a file
    the caller owns anyway (a lock file), with no new name in the folder. With no times given,
    utime asks an NFS server to stamp its own time; an SMB or FUSE (sshfs) mount may stamp the
    client's instead, where `now_in` still reads the server's."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        os.utime(fd)  # on the open file: a lock file removed meanwhile is no error
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)

