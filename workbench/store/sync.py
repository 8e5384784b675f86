"""Sharing a store between folders: clone, push and pull (a shared drive, a mounted bucket).

Stores share by exchanging files: events and commits never change once written, so a side
only copies the files the other lacks (by name; a compacted segment counts as the parts it
holds), and it can do so while others write there. Refs are what moves: a push moves the
other side's branch only forward (its head must be part of ours); a pull records where the
other side's branches are (`<remote>/<branch>`) and moves ours forward when it can, otherwise
`store.merge("origin/main")` combines the two. Events copied in keep the id of the store
they were written in, so a store never mistakes another's uncommitted work for its own: it
sees it only through commits.

Every copied file is written durably under a temporary name first, and refs move last, so a
copy killed at any moment leaves both stores readable and losing nothing acknowledged.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from workbench import file_clock
from workbench.store import files
from workbench.store.errors import StoreError, merge_from
from workbench.store.history import HISTORY, MAIN, check_name
from workbench.store.log import LabelStore, read_meta, write_meta

ORIGIN = "origin"
COPY_ROUNDS = 5  # listings of the other side before a pull or push gives up on a missing event
STALE_CLONE_S = 3600  # a clone's hidden build folder untouched this long was left by a killed clone


def clone(source: str | os.PathLike, target: str | os.PathLike, *,
          annotator: str | None = None) -> LabelStore:
    """A new store at `target` holding everything of `source`, which it calls "origin".

    The clone starts from what the source shows on main now, uncommitted labels included,
    as a commit of its own; the source is only read. It is built in a hidden folder beside
    `target` and renamed into place when whole, so a clone killed half way leaves no store.
    """
    source, target = Path(source), Path(target)
    meta = read_meta(source)
    if target.exists() and (not target.is_dir() or any(not n.startswith(".") for n in os.listdir(target))):
        raise StoreError(f"clone target {str(target)!r} is not empty; expected a new folder")
    # What to copy is fixed first: the source's refs and what its main shows now. Whatever
    # its writers add while we copy is left for the next pull, so a commit here never names
    # an event this store lacks.
    original = LabelStore.reader(source)
    with original._lock:
        original._view()
        head = original._head_id()
        shown = dict(original._frontier)
        for writer, count in original._local_counts.items():
            shown[writer] = max(shown.get(writer, 0), count)
    heads = _heads(source)
    _remove_dead_clones(target)
    building = target.parent / f".{target.name}.clone-{uuid.uuid4().hex[:8]}"
    try:
        copy = LabelStore.open(building, annotator=annotator)  # a fresh store: its own id
        write_meta(building, {**read_meta(building),
                              **{k: meta[k] for k in ("classes", "pool", "pool_source", "task") if k in meta},
                              "remotes": {ORIGIN: str(source.resolve())}})
        _copy_until_covered(source, copy.path, [shown, *(_frontier(source, c) for c in heads.values())])
        with files.locked(copy._lock_path()):
            for branch, commit in heads.items():
                copy._set_ref("remotes", f"{ORIGIN}/{branch}", commit)
            if head is not None:
                copy._set_ref("heads", MAIN, head)
        if shown != original._commit_frontier(head):
            copy = LabelStore.open(building, annotator=annotator)
            copy._snapshot(shown, [head] if head else [],
                           f"Clone of {source.name}, with its uncommitted labels")
        if target.exists():
            target.rmdir()  # empty (checked above): the finished clone takes its place
        os.rename(building, target)
        files.fsync_dir(target.parent)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return LabelStore.open(target, annotator=annotator)


def _remove_dead_clones(target: Path, older_than_s: float = STALE_CLONE_S) -> None:
    """Hidden folders of clones into `target` that were killed half way (an hour old: a clone
    still running is never that slow to touch its folder)."""
    if not target.parent.is_dir():
        return
    now = None  # by the file system's clock, which stamped the folders: not this machine's
    for entry in os.scandir(target.parent):
        if entry.name.startswith(f".{target.name}.clone-") and entry.is_dir(follow_symlinks=False):
            try:
                newest = max([entry.stat().st_mtime] + [e.stat().st_mtime for e in os.scandir(entry.path)])
            except FileNotFoundError:
                continue
            now = file_clock.now_in(target.parent) if now is None else now
            if now - newest > older_than_s:
                shutil.rmtree(entry.path, ignore_errors=True)


def push(store: LabelStore, remote: str | os.PathLike = ORIGIN, *,
         branch: str | None = None) -> dict:
    """Copy to `remote` the events and commits it lacks, then move its `branch` (default:
    the store's current branch) to ours, if that only moves it forward. The ref moves only
    once every event our head names is durable there."""
    there = _remote_path(store, remote)
    _check_compatible(store.path, there)
    branch = branch or store.current_branch
    head = store._head_id(branch)
    if head is None:
        raise StoreError(f"branch {branch!r} has no commits to push; commit first")
    if branch == store.current_branch and store._view().changes():
        raise StoreError(f"branch {branch!r} has uncommitted changes; a push sends commits, "
                         "so commit them first")
    remote_store = LabelStore.reader(there)
    copied = _copy_until_covered(store.path, there, [store._commit(head).frontier])
    with files.locked(remote_store._lock_path()):
        theirs = remote_store._head_id(branch)
        if theirs is not None and theirs not in store._ancestors(head):
            other = f"{_remote_name(store, remote, there)}/{branch}"
            raise StoreError(f"{there} has commits on {branch!r} that this store lacks (its "
                             f"head is {theirs[:7]}); pull, merge (", merge_from(other), "), then push")
        remote_store._set_ref("heads", branch, head)
    return {"files": copied, "branch": branch, "from": theirs, "to": head}


def pull(store: LabelStore, remote: str | os.PathLike = ORIGIN) -> dict:
    """Copy from `remote` the events and commits this store lacks; note where each of its
    branches is (`<remote>/<branch>`), and move this store's current branch forward to the
    remote's when nothing of ours would be left behind.

    The remote's refs are read first and moved here only once every event they name has
    been copied, so a pull that races a teammate's commit or compaction never leaves a ref
    pointing past the events it has."""
    there = _remote_path(store, remote)
    _check_compatible(there, store.path)
    name = _remote_name(store, remote, there)
    heads = _heads(there)  # first: what we copy next covers them
    copied = _copy_until_covered(there, store.path, [_frontier(there, c) for c in heads.values()])
    moved = None
    with store._lock, files.locked(store._lock_path()):
        for branch, commit in heads.items():
            store._set_ref("remotes", f"{name}/{branch}", commit)
        theirs = heads.get(store.current_branch)
        ours = store._head_id()
        if theirs is not None and theirs != ours and not store._view().changes() and (
                ours is None or ours in store._ancestors(theirs)):
            store._set_ref("heads", store.current_branch, theirs)
            moved = theirs
    store._view()
    return {"files": copied, "remote": name, "fast_forward": moved,
            "branches": {b: c[:7] for b, c in heads.items()}}


def _remote_path(store: LabelStore, remote) -> Path:
    remotes = _remotes(store.path)
    if isinstance(remote, str) and remote in remotes:
        return Path(remotes[remote])
    path = Path(remote)
    if not (path / "_workbench.json").exists():
        known = ", ".join(f"{k} ({v})" for k, v in remotes.items()) or "none"
        raise StoreError(f"remote {str(remote)!r} is neither a remote of this store ({known}) nor "
                         "a label store folder")
    return path


def _remotes(path: Path) -> dict:
    return dict(read_meta(path).get("remotes", {}))


def _remote_name(store: LabelStore, remote, there: Path) -> str:
    """What `<remote>/<branch>` refs are called: a remote's name, also when it is given by
    its path (so `merge origin/main` works however the pull was spelled)."""
    remotes = _remotes(store.path)
    if isinstance(remote, str) and remote in remotes:
        return remote
    for known, path in remotes.items():
        if Path(path).resolve() == Path(there).resolve():
            return known
    return check_name(Path(there).resolve().name, "remote")


def _heads(path: Path) -> dict[str, str]:
    """branch -> head commit id of a store, read from its refs (never a temp file)."""
    folder = path / HISTORY / "refs" / "heads"
    if not folder.is_dir():
        return {}
    heads = {}
    for entry in os.scandir(folder):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            heads[entry.name] = Path(entry.path).read_text().strip()
        except FileNotFoundError:
            continue
    return heads


def _frontier(path: Path, commit_id: str) -> dict:
    """A commit's frontier, from a store's commit file (written before any ref names it)."""
    try:
        return json.loads((path / HISTORY / "commits" / f"{commit_id}.json").read_text())["frontier"]
    except FileNotFoundError:
        raise StoreError(f"{path} names commit {commit_id[:7]} in a ref but lacks its file; "
                         "its history is damaged") from None


def _copy_until_covered(source: Path, target: Path, frontiers: list[dict]) -> int:
    """Copy what the store at `target` lacks until it holds every event the frontiers name. A listing of
    `source` can miss events (a part compacted away between listing and reading, its
    segment written after the listing): list again. Refuses, moving nothing, if events stay
    missing."""
    need: dict[str, int] = {}
    for frontier in frontiers:
        for writer, count in frontier.items():
            need[writer] = max(need.get(writer, 0), count)
    copied = 0
    for _ in range(COPY_ROUNDS):
        copied += _copy_missing(source, target)
        missing = _missing_parts(source, target, need)
        if not missing:
            return copied
    raise StoreError(f"{source} names events that could not be copied from it (in "
                     f"{', '.join(sorted(missing)[:3])}{' ...' if len(missing) > 3 else ''}); "
                     "nothing was moved: try again, and check that the folder is whole")


def _missing_parts(source: Path, target: Path, need: dict[str, int]) -> set[str]:
    """The part files holding events the frontier `need` names that `source` has (as a file
    or inside a segment) and `target` lacks. By name alone, no event read: every event is
    born in a part named `part-<writer>-<first seq>`, and a segment lists the parts it holds."""
    wanted = set()
    for name in _covered(source):
        writer, first = _part_key(name)
        if writer is not None and first < need.get(writer, 0):
            wanted.add(name)
    return wanted - _covered(target)


def _part_key(name: str) -> tuple[str | None, int]:
    """(writer, first seq) of a part file's name; (None, 0) for a segment's."""
    if not name.startswith("part-"):
        return None, 0
    writer, _, first = name[len("part-"):-len(".parquet")].rpartition("-")
    return writer, int(first)


def _check_compatible(source: Path, target: Path) -> None:
    """Refuse to mix stores of different class sets or pools, or a newer store's files."""
    src, dst = read_meta(source), read_meta(target)
    if src.get("schema_version", 1) > dst.get("schema_version", 1):
        raise StoreError(f"{source} was written by a newer workbench (schema_version "
                         f"{src['schema_version']}) than {target} reads")
    for key, what in (("classes", "class set"), ("pool", "pool")):
        if key in src and key in dst and src[key] != dst[key]:
            raise StoreError(f"{source} and {target} hold labels of different {what}s "
                             f"({src[key]} vs {dst[key]}); they cannot share history")
    if "classes" in src and "classes" in dst and src.get("task", "single") != dst.get("task", "single"):
        raise StoreError(f"{source} holds {src.get('task', 'single')!r} labels and {target} "
                         f"{dst.get('task', 'single')!r} ones; they cannot share history")


def _copy_missing(source: Path, target: Path) -> int:
    """Copy event files, then commits and tags, that `target` lacks; returns how many."""
    have = _covered(target)
    names = files.list_names(source, ("part-", "segment-"))
    segments = [n for n in names if n.startswith("segment-")]
    # Parts a segment holds are left for a grace period after compaction: copy the segment.
    held = set().union(*(_held(source / n) for n in segments)) if segments else set()
    copied = 0
    for name in sorted(set(names) - held):
        if name in have:
            continue
        try:
            data = (source / name).read_bytes()
        except FileNotFoundError:  # compacted away meanwhile: its segment is copied instead
            continue
        files.write_durably(target, name, data, sync_dir=False)
        copied += 1
    if copied:
        files.fsync_dir(target)  # once for all the renames, before any ref can name them
        files.bump_stamp(target)  # handles on the target list it again (files.STAMP)
    for sub in ("commits", "refs/tags"):
        folder = source / HISTORY / sub
        if not folder.is_dir():
            continue
        out = target / HISTORY / sub
        out.mkdir(parents=True, exist_ok=True)
        before = copied
        for entry in os.scandir(folder):
            if entry.name.startswith(".") or (out / entry.name).exists():
                continue
            if sub == "refs/tags":
                check_name(entry.name, "tag")
            files.write_durably(out, entry.name, Path(entry.path).read_bytes(), sync_dir=False)
            copied += 1
        if copied > before:
            files.fsync_dir(out)
    return copied


def _covered(path: Path) -> set[str]:
    """Event file names a store has, counting the parts its segments hold."""
    names = set(files.list_names(path, ("part-", "segment-")))
    for name in list(names):
        if name.startswith("segment-"):
            names |= _held(path / name)
    return names


def _held(segment: Path) -> set[str]:
    """The parts a segment holds; none if it was never there (a listing can be stale)."""
    try:
        return files.merged_parts(segment)
    except FileNotFoundError:
        return set()

