"""The commit graph: commits as immutable files under `_history/commits`, and their ancestry.

A commit's id is a hash of what it records, so its file never changes once written and a
handle keeps every commit it has read. Ancestry (ancestors, generation numbers, the merge
base) is found by following parents, never by the commits' wall clocks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from workbench.store.errors import StoreError

HISTORY = "_history"


@dataclass(frozen=True)
class Commit:
    """One named state of a branch's labels."""

    id: str
    parents: tuple[str, ...]
    branch: str
    author: str
    time: str            # UTC, ISO 8601
    message: str
    n_labels: int
    labels_hash: str
    added: int
    changed: int
    removed: int
    frontier: dict = field(repr=False)

    @property
    def short(self) -> str:
        return self.id[:7]

    def __str__(self) -> str:
        return f"{self.short} {self.message} ({self.n_labels} labels, {self.author}, {self.time})"


def history_dir(store) -> Path:
    """The `_history` folder beside the log: commits, refs, records of merges in progress."""
    return store.path / HISTORY


def cache(store) -> dict:
    """commit id -> Commit, for every commit this handle has read (they never change)."""
    if not hasattr(store, "_commits_read"):
        store._commits_read = {}
    return store._commits_read


def load(store, commit_id: str) -> Commit:
    """The commit with this id, from its file (read once per handle)."""
    cached = cache(store).get(commit_id)
    if cached is None:
        path = history_dir(store) / "commits" / f"{commit_id}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(f"commit {commit_id!r} is missing from {store.path}") from None
        cached = Commit(**{**data, "parents": tuple(data["parents"])})
        cache(store)[commit_id] = cached
    return cached


def ids(store) -> list[str]:
    """The ids of every commit in the store."""
    folder = history_dir(store) / "commits"
    if not folder.is_dir():
        return []
    return [n[:-5] for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")]


def frontier(store, commit_id: str | None) -> dict:
    """A commit's frontier; None (no commit yet) is the empty frontier."""
    return {} if commit_id is None else load(store, commit_id).frontier


def ancestors(store, commit_id: str) -> set[str]:
    """A commit and every commit behind it."""
    seen, todo = set(), [commit_id]
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            todo.extend(load(store, c).parents)
    return seen


def generation(store, commit_id: str) -> int:
    """1 + the longest chain of parents behind a commit: a parent always has a lower one.
    Commits never change, so the number is kept."""
    known = store.__dict__.setdefault("_generations", {})
    todo = [commit_id]
    while todo:  # iterative: a long history must not hit the recursion limit
        c = todo[-1]
        if c in known:
            todo.pop()
            continue
        parents = load(store, c).parents
        missing = [p for p in parents if p not in known]
        if missing:
            todo.extend(missing)
        else:
            known[c] = 1 + max((known[p] for p in parents), default=0)
            todo.pop()
    return known[commit_id]


def merge_base(store, a: str, b: str) -> str | None:
    """The best common ancestor, found by ancestry, never by the commits' wall clocks: a
    common ancestor of `a` and `b` that no other common ancestor descends from (the
    deepest, should a criss-cross merge leave several). None: no shared history."""
    common = ancestors(store, a) & ancestors(store, b)
    if not common:
        return None
    below = set()
    for c in common:
        below |= ancestors(store, c) - {c}
    best = common - below
    return max(best, key=lambda c: (generation(store, c), c))
