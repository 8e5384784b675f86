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

import os
from pathlib import Path

from workbench.store import files
from workbench.store.errors import StoreError
from workbench.store.history import HISTORY, check_name
from workbench.store.log import LabelStore, read_meta, write_meta

ORIGIN = "origin"


def clone(source: str | os.PathLike, target: str | os.PathLike, *,
          annotator: str | None = None) -> LabelStore:
    """A new store at `target` holding everything of `source`, which it calls "origin"."""
    source, target = Path(source), Path(target)
    meta = read_meta(source)
    if target.exists() and any(not n.startswith(".") for n in os.listdir(target)):
        raise StoreError(f"clone target {str(target)!r} is not empty; expected a new folder")
    LabelStore.open(target, annotator=annotator)  # a fresh store: its own id
    mine = read_meta(target)
    write_meta(target, {**mine, **{k: meta[k] for k in ("classes", "pool") if k in meta},
                        "remotes": {ORIGIN: str(source.resolve())}})
    copy = LabelStore.open(target, annotator=annotator)
    pull(copy, ORIGIN)
    # What the source shows on main includes labels nobody committed yet; the clone starts
    # from exactly that, as a commit of its own (the source is left as it was).
    original = LabelStore.open(source)
    original._view()
    frontier = dict(original._frontier)
    for writer, count in original._local_counts.items():
        frontier[writer] = max(frontier.get(writer, 0), count)
    if frontier != original._commit_frontier(original._head_id()):
        parents = [p for p in (original._head_id(),) if p]
        copy._snapshot(frontier, parents, f"Clone of {source.name}, with its uncommitted labels")
    return LabelStore.open(target, annotator=annotator)


def push(store: LabelStore, remote: str | os.PathLike = ORIGIN, *,
         branch: str | None = None) -> dict:
    """Copy to `remote` the events and commits it lacks, then move its `branch` (default:
    the store's current branch) to ours, if that only moves it forward."""
    there = _remote_path(store, remote)
    _check_compatible(store.path, there)
    branch = branch or store.current_branch
    head = store._head_id(branch)
    if head is None:
        raise StoreError(f"branch {branch!r} has no commits to push; commit first")
    if branch == store.current_branch and store._view().changes():
        raise StoreError(f"branch {branch!r} has uncommitted changes; a push sends commits, "
                         "so commit them first")
    copied = _copy_missing(store.path, there)
    remote_store = LabelStore.open(there)
    with files.locked(remote_store._lock_path()):
        theirs = remote_store._head_id(branch)
        if theirs is not None and theirs not in store._ancestors(head):
            raise StoreError(f"{there} has commits on {branch!r} that this store lacks (its "
                             f"head is {theirs[:7]}); pull and merge first, then push")
        remote_store._set_ref("heads", branch, head)
    return {"files": copied, "branch": branch, "from": theirs, "to": head}


def pull(store: LabelStore, remote: str | os.PathLike = ORIGIN) -> dict:
    """Copy from `remote` the events and commits this store lacks; note where each of its
    branches is (`<remote>/<branch>`), and move this store's current branch forward to the
    remote's when nothing of ours would be left behind."""
    there = _remote_path(store, remote)
    _check_compatible(there, store.path)
    name = remote if remote in _remotes(store.path) else Path(there).name
    copied = _copy_missing(there, store.path)
    remote_store = LabelStore.open(there)
    moved = None
    with store._lock, files.locked(store._lock_path()):
        heads = remote_store.branches()
        for branch, _ in heads[["branch", "head"]].itertuples(index=False):
            commit = remote_store._head_id(branch)
            if commit is not None:
                store._set_ref("remotes", f"{name}/{branch}", commit)
        theirs = remote_store._head_id(store.current_branch)
        ours = store._head_id()
        store._refresh()
        if theirs is not None and theirs != ours and not store._view().changes() and (
                ours is None or ours in store._ancestors(theirs)):
            store._set_ref("heads", store.current_branch, theirs)
            moved = theirs
    store._view()
    return {"files": copied, "remote": name, "fast_forward": moved}


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


def _copy_missing(source: Path, target: Path) -> int:
    """Copy event files, then commits and tags, that `target` lacks; returns how many."""
    have = _covered(target)
    copied = 0
    for name in sorted(files.list_names(source, ("part-", "segment-"))):
        if name in have:
            continue
        try:
            data = (source / name).read_bytes()
        except FileNotFoundError:  # compacted away meanwhile: its segment is copied instead
            continue
        files.write_durably(target, name, data)
        copied += 1
    for sub in ("commits", "refs/tags"):
        folder = source / HISTORY / sub
        if not folder.is_dir():
            continue
        out = target / HISTORY / sub
        out.mkdir(parents=True, exist_ok=True)
        for entry in os.scandir(folder):
            if entry.name.startswith(".") or (out / entry.name).exists():
                continue
            if sub == "refs/tags":
                check_name(entry.name, "tag")
            files.write_durably(out, entry.name, Path(entry.path).read_bytes())
            copied += 1
    return copied


def _covered(path: Path) -> set[str]:
    """Event file names a store has, counting the parts its segments hold."""
    names = set(files.list_names(path, ("part-", "segment-")))
    for name in list(names):
        if name.startswith("segment-"):
            names |= files.merged_parts(path / name)
    return names

