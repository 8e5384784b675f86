"""Refs: the names of commits (branches, tags, where a pulled store's branches were), and
resolving any ref to the commit it names.

    _history/refs/heads/<branch>      the branch's head commit id
    _history/refs/tags/<tag>          a tag's commit id
    _history/refs/remotes/<r>/<b>     where another store's branch was at the last pull
    _history/.lock                    flock held while a ref moves

A ref is one small file replaced whole (files.write_durably), written only once the commit it
names is, so a ref never names a missing commit.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from workbench.store import files, graph
from workbench.store.errors import COMMIT, StoreError
from workbench.store.graph import Commit

MAIN = "main"  # the branch every store has; events from before branches read as on it
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
HEX = re.compile(r"[0-9a-f]{4,64}")


def check_name(name, what: str) -> str:
    """A branch, tag or remote name as given, or a StoreError: it becomes a file name."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == "HEAD":
        raise StoreError(f"{what} name {name!r} is not allowed: use letters, digits, '.', '_' "
                         f"and '-', starting with a letter or digit (and not 'HEAD')")
    return name


def rev(store, ref: str = "HEAD") -> Commit:
    """The commit a ref names: a commit id or a unique prefix of one (4+ hex digits), a
    tag, a branch, "HEAD" (this branch's head), "<ref>~N" (N first parents back), or
    "<remote>/<branch>" (where a pulled store's branch was)."""
    if isinstance(ref, Commit):  # what commit(), merge() and rev() return
        ref = ref.id
    if not isinstance(ref, str) or not ref:
        raise StoreError(f"a ref must be a non-empty str (a commit id, tag, branch or "
                         f"HEAD) or a Commit, got {type(ref).__name__} {ref!r}")
    base, _, back = ref.partition("~")
    if back and not back.isdigit():
        raise StoreError(f"in ref {ref!r}, what follows '~' must be a number of commits")
    commit = _rev(store, base)
    for _ in range(int(back or 0)):
        if not commit.parents:
            raise StoreError(f"{ref!r} goes back past the first commit ({commit.short})")
        commit = graph.load(store, commit.parents[0])
    return commit


def _rev(store, ref: str) -> Commit:
    if ref == "HEAD":
        head = head_id(store)
        if head is None:
            raise StoreError(f"branch {store.current_branch!r} has no commits yet; make one with ",
                             COMMIT)
        return graph.load(store, head)
    for kind in ("heads", "tags", "remotes"):
        path = graph.history_dir(store) / "refs" / kind / ref
        if kind != "remotes" and "/" in ref:
            continue
        if path.is_file():
            return graph.load(store, path.read_text().strip())
    if HEX.fullmatch(ref):
        found = [c for c in graph.ids(store) if c.startswith(ref)]
        if len(found) == 1:
            return graph.load(store, found[0])
        if len(found) > 1:
            raise StoreError(f"ref {ref!r} is ambiguous: it starts "
                             f"{', '.join(sorted(f[:12] for f in found))}; give more digits")
    raise StoreError(f"unknown ref {ref!r} in {store.path}; branches: "
                     f"{', '.join(branches(store)['branch']) or 'none'}; tags: "
                     f"{', '.join(tags(store)['tag']) or 'none'}; commits: "
                     f"{', '.join(c[:7] for c in sorted(graph.ids(store))[:8]) or 'none'}"
                     f"{' ...' if len(graph.ids(store)) > 8 else ''}")


def log(store, ref: str = "HEAD") -> pd.DataFrame:
    """The commits that lead to `ref`, newest first, with how many labels each one added,
    changed and removed (against its first parent)."""
    columns = ["commit", "time", "author", "message", "n_labels", "added", "changed",
               "removed", "parents", "labels_hash", "id"]
    if ref == "HEAD" and head_id(store) is None:
        return pd.DataFrame(columns=columns)
    commits = sorted((graph.load(store, c) for c in graph.ancestors(store, rev(store, ref).id)),
                     key=lambda c: (graph.generation(store, c.id), c.time, c.id), reverse=True)
    rows = [{"commit": c.short, "time": pd.Timestamp(c.time), "author": c.author,
             "message": c.message, "n_labels": c.n_labels, "added": c.added,
             "changed": c.changed, "removed": c.removed,
             "parents": " ".join(p[:7] for p in c.parents), "labels_hash": c.labels_hash,
             "id": c.id} for c in commits]
    return pd.DataFrame(rows, columns=columns)  # children before parents, whatever the clocks


def branches(store) -> pd.DataFrame:
    """Every branch, its head commit, and which one this handle is on."""
    heads = graph.history_dir(store) / "refs" / "heads"
    found = {p.name for p in heads.iterdir() if not p.name.startswith(".")} if heads.is_dir() else set()
    names = sorted({MAIN, *found})  # (a dot name is a ref being written, never a branch)
    rows = []
    for name in names:
        head = head_id(store, name)
        rows.append({"branch": name, "head": head[:7] if head else None,
                     "current": name == store.current_branch})
    return pd.DataFrame(rows, columns=["branch", "head", "current"])


def tags(store) -> pd.DataFrame:
    """Every tag and the commit it names."""
    folder = graph.history_dir(store) / "refs" / "tags"
    names = sorted(p.name for p in folder.iterdir()
                   if not p.name.startswith(".")) if folder.is_dir() else []
    rows = [{"tag": n, "commit": (folder / n).read_text().strip()[:7]} for n in names]
    return pd.DataFrame(rows, columns=["tag", "commit"])


def tag(store, name: str, ref: str = "HEAD") -> Commit:
    """Name a commit for good (a model you shipped, say)."""
    check_name(name, "tag")
    with files.locked(lock_path(store)):
        if (graph.history_dir(store) / "refs" / "tags" / name).exists():
            raise StoreError(f"tag {name!r} exists already (at "
                             f"{rev(store, name).short}); tags do not move, pick another name")
        commit = rev(store, ref)
        set_ref(store, "tags", name, commit.id)
        return commit


def branch(store, name: str, at: str = "HEAD") -> Commit:
    """Start a branch at a commit; open it with LabelStore.open(path, branch=name). Its
    labels change only with the events written on it, until it is merged."""
    check_name(name, "branch")
    with files.locked(lock_path(store)):
        if name in branches(store)["branch"].tolist():
            raise StoreError(f"branch {name!r} exists already; branches: "
                             f"{', '.join(branches(store)['branch'])}")
        commit = rev(store, at)
        set_ref(store, "heads", name, commit.id)
        return commit


def lock_path(store) -> Path:
    """The flock that one process at a time holds while it moves a ref."""
    graph.history_dir(store).mkdir(exist_ok=True)
    return graph.history_dir(store) / ".lock"


def set_ref(store, kind: str, name: str, commit_id: str) -> None:
    """Point a ref (kind: heads, tags or remotes) at a commit, durably."""
    folder = graph.history_dir(store) / "refs" / kind
    if "/" in name:
        folder, name = folder / name.rsplit("/", 1)[0], name.rsplit("/", 1)[1]
    folder.mkdir(parents=True, exist_ok=True)
    files.write_durably(folder, name, f"{commit_id}\n".encode())


def head_id(store, branch: str | None = None) -> str | None:
    """The id of a branch's head commit (default: this handle's branch); None before its first."""
    try:
        return (graph.history_dir(store) / "refs" / "heads"
                / (branch or store.current_branch)).read_text().strip()
    except FileNotFoundError:
        return None
