"""Compaction: merging a store's loose part files into segments, and retiring the parts.

compact() writes the merged segment under a name every reader ignores (`_pending-...`) and
leaves the parts in place: a reader that listed them (a teammate's pull, say) still finds
them, and plain pandas never sees an event twice. Once the segment is RETIRE_AFTER_S old (as
git's gc keeps loose objects for a grace period) a later compact() or open() publishes it by a
rename, then deletes the parts it holds. Readers skip parts a segment lists (and dedupe by
event_id), so a crash anywhere in between leaves duplicates, never a loss, and the next
compaction finishes the job. Only the folder is needed, not a handle: one process at a time
compacts (`.compact.lock`), and the others go on reading and writing.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from workbench import file_clock
from workbench.store import clock, files, schema, views

AUTO_COMPACT_PARTS = 500  # open() compacts above this many loose parts, so reopening stays fast
RETIRE_AFTER_S = 15 * 60  # a compaction is published (its parts deleted) after this long
PENDING = "_pending-"  # the prefix of a segment not published yet: pyarrow and pandas skip "_"
MAX_SEGMENTS = 8  # compaction merges the segments too when there are this many


def compact(path: Path, *, min_parts: int = 2, retire_after: float | None = None) -> int:
    """Merge loose part files into one segment; returns how many parts it merged. The
    segment is published, and the parts it holds deleted, once it is `retire_after`
    seconds old (default RETIRE_AFTER_S; 0: at once, when no other process may be
    reading); until then it waits under a name readers skip.

    Returns 0 without waiting when another process holds the compaction lock.
    """
    retire_after = RETIRE_AFTER_S if retire_after is None else retire_after
    with files.locked(path / ".compact.lock", wait=False) as held:
        if not held:
            return 0
        covered = publish(path, retire_after)
        parts = sorted(set(files.list_names(path, ("part-",))) - covered)
        segments = sorted(set(files.list_names(path, ("segment-",))) - covered)
        # Every pull and push reads each segment's list of parts: past a few segments,
        # merge them too (the new one lists theirs and them, and they retire like parts).
        deep = len(segments) >= MAX_SEGMENTS
        if len(parts) < min_parts and not deep:
            return 0
        inputs = parts + (segments if deep else [])
        held = set(inputs).union(*(files.merged_parts(path / n) for n in segments)) if deep \
            else set(parts)
        table = schema.read_files(path, inputs).sort_by([(c, "ascending") for c in views.ORDER])
        table = table.replace_schema_metadata({files.MERGED_KEY: json.dumps(sorted(held))})
        stamp = clock.wall_clock().strftime("%Y%m%dT%H%M%S")
        files.write_durably(path, f"{PENDING}segment-{stamp}-{uuid.uuid4().hex[:12]}.parquet",
                            files.parquet_bytes(table))
        if retire_after <= 0:  # nobody else reading: publish at once
            publish(path, retire_after)
        return len(parts)


def publish(path: Path, older_than: float) -> set[str]:
    """Publish pending segments at least `older_than` seconds old (a rename), then delete
    the files published segments hold (parts, and segments a deep compaction merged);
    returns the names of all files some segment, pending or published, holds."""
    covered, published = set(), False
    # The age of a segment by the file system's clock, which stamped it: a machine whose clock
    # runs an hour ahead must not publish (and delete parts) under readers still in their grace
    now = file_clock.touch(path / ".compact.lock")  # held by the caller: ours to touch
    for pending in files.list_names(path, (f"{PENDING}segment-",)):
        try:
            held = files.merged_parts(path / pending)
            age = now - (path / pending).stat().st_mtime
        except FileNotFoundError:
            continue
        if age >= older_than:
            os.rename(path / pending, path / pending[len(PENDING):])
            published = True
        else:
            covered |= held
    if published:
        files.fsync_dir(path)  # the segment is durable under its name before any delete
        # A listing that ran across the rename and the deletes below may hold neither the
        # segment nor its parts: the stamp makes its reader list again (files.STAMP)
        files.bump_stamp(path)
    present = set(files.list_names(path, ("part-", "segment-")))  # one listing, no stat each
    retired = set()
    for segment in (n for n in present if n.startswith("segment-")):
        try:
            held = files.merged_parts(path / segment)
        except FileNotFoundError:
            continue
        covered |= held
        retired |= held & present
    for name in retired:
        (path / name).unlink(missing_ok=True)
    if retired:
        files.fsync_dir(path)
    return covered
