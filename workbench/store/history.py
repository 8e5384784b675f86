"""Label history: commits, refs, log, diff, blame, revert, restore, branches and merge.

The dataset is a repository whose commits are states of the labels. Nothing is copied to
make one: events are immutable and each writer numbers its own, so a state is named exactly
by a *frontier*, for each writer the number of its events that count. A commit records its
frontier, its parents, who, when and why, and what it holds (`n_labels`, `labels_hash`);
labels "as of" a commit are the same fold as the current labels, over the events inside its
frontier (`views`).

A branch is a head commit plus the events written on that branch in this store since then;
what a handle on it sees is its *scope*. Everything that changes labels (revert, restore, the
changes a merge takes, the resolution of a conflict) is new events, so nothing is ever deleted
and every step can itself be taken back. A merge combines two frontiers; where a plain fold of
the union would not give the three-way result (both sides changed an item, or clocks disagree),
it writes "merge" events that do, and an item both sides changed to different labels is a
conflict the merge will not complete without.

Layout, beside the log (names starting with "_" are invisible to pandas and pyarrow):

    _history/commits/<id>.json        one immutable file per commit
    _history/refs/heads/<branch>      the branch's head commit id
    _history/refs/tags/<tag>          a tag's commit id
    _history/refs/remotes/<r>/<b>     where another store's branch was at the last pull
    _history/merging-<branch>.json    a merge in progress: the other side, its conflicts
    _history/.lock                    flock held while a ref moves

This module is a mixin of `LabelStore` (workbench.store.log): it uses the handle's log and view.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.store import clock, files, views
from workbench.store.errors import ABORT_MERGE, COMMIT, CONFLICTS, RESOLVE, RESTORE, StoreError

MAIN = "main"
HISTORY = "_history"
PROVENANCE = ("merge", "revert", "restore")  # sources of events that copy another event's label
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
HEX = re.compile(r"[0-9a-f]{4,64}")


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


@dataclass
class MergeResult:
    """What `merge` did: the commit it made (None while conflicts wait), how, and the
    conflicts: one row per item both sides changed to different labels."""

    commit: Commit | None
    fast_forward: bool
    taken: int                 # items whose label came from the other side
    conflicts: pd.DataFrame

    def __repr__(self) -> str:
        if self.commit is None:
            return (f"MergeResult(conflicts={len(self.conflicts)}: resolve each with "
                    f"store.resolve(item_id, label), then store.commit(message))")
        how = "fast-forward" if self.fast_forward else f"{self.taken} items taken"
        return f"MergeResult({self.commit.short}, {how})"


def check_name(name, what: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == "HEAD":
        raise StoreError(f"{what} name {name!r} is not allowed: use letters, digits, '.', '_' "
                         f"and '-', starting with a letter or digit (and not 'HEAD')")
    return name


class History:
    """Commit, log, diff, blame, revert, restore, branches and merge (see the module doc)."""

    # -- reading commits and refs ------------------------------------------------------------
    def rev(self, ref: str = "HEAD") -> Commit:
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
        commit = self._rev(base)
        for _ in range(int(back or 0)):
            if not commit.parents:
                raise StoreError(f"{ref!r} goes back past the first commit ({commit.short})")
            commit = self._commit(commit.parents[0])
        return commit

    def _rev(self, ref: str) -> Commit:
        if ref == "HEAD":
            head = self._head_id()
            if head is None:
                raise StoreError(f"branch {self.current_branch!r} has no commits yet; make one with ",
                                 COMMIT)
            return self._commit(head)
        for kind in ("heads", "tags", "remotes"):
            path = self._hdir() / "refs" / kind / ref
            if kind != "remotes" and "/" in ref:
                continue
            if path.is_file():
                return self._commit(path.read_text().strip())
        if HEX.fullmatch(ref):
            found = [c for c in self._commit_ids() if c.startswith(ref)]
            if len(found) == 1:
                return self._commit(found[0])
            if len(found) > 1:
                raise StoreError(f"ref {ref!r} is ambiguous: it starts "
                                 f"{', '.join(sorted(f[:12] for f in found))}; give more digits")
        raise StoreError(f"unknown ref {ref!r} in {self.path}; branches: "
                         f"{', '.join(self.branches()['branch']) or 'none'}; tags: "
                         f"{', '.join(self.tags()['tag']) or 'none'}; commits: "
                         f"{', '.join(c[:7] for c in sorted(self._commit_ids())[:8]) or 'none'}"
                         f"{' ...' if len(self._commit_ids()) > 8 else ''}")

    def status(self) -> dict:
        """Where this branch stands: its head, how many labels changed since, a merge."""
        with self._lock:
            head = self._head_id()
            merging = self._merge_state()
            return {"branch": self.current_branch, "head": head[:7] if head else None,
                    "uncommitted": len(self._view().changes()),
                    "merging": None if merging is None else merging["theirs"][:7],
                    "conflicts": len(self.conflicts())}

    def log(self, ref: str = "HEAD") -> pd.DataFrame:
        """The commits that lead to `ref`, newest first, with how many labels each one added,
        changed and removed (against its first parent)."""
        columns = ["commit", "time", "author", "message", "n_labels", "added", "changed",
                   "removed", "parents", "labels_hash", "id"]
        if ref == "HEAD" and self._head_id() is None:
            return pd.DataFrame(columns=columns)
        commits = sorted((self._commit(c) for c in self._ancestors(self.rev(ref).id)),
                         key=lambda c: (self._generation(c.id), c.time, c.id), reverse=True)
        rows = [{"commit": c.short, "time": pd.Timestamp(c.time), "author": c.author,
                 "message": c.message, "n_labels": c.n_labels, "added": c.added,
                 "changed": c.changed, "removed": c.removed,
                 "parents": " ".join(p[:7] for p in c.parents), "labels_hash": c.labels_hash,
                 "id": c.id} for c in commits]
        return pd.DataFrame(rows, columns=columns)  # children before parents, whatever the clocks

    def branches(self) -> pd.DataFrame:
        """Every branch, its head commit, and which one this handle is on."""
        heads = self._hdir() / "refs" / "heads"
        found = {p.name for p in heads.iterdir() if not p.name.startswith(".")} if heads.is_dir() else set()
        names = sorted({MAIN, *found})  # (a dot name is a ref being written, never a branch)
        rows = []
        for name in names:
            head = self._head_id(name)
            rows.append({"branch": name, "head": head[:7] if head else None,
                         "current": name == self.current_branch})
        return pd.DataFrame(rows, columns=["branch", "head", "current"])

    def tags(self) -> pd.DataFrame:
        folder = self._hdir() / "refs" / "tags"
        names = sorted(p.name for p in folder.iterdir()
                       if not p.name.startswith(".")) if folder.is_dir() else []
        rows = [{"tag": n, "commit": (folder / n).read_text().strip()[:7]} for n in names]
        return pd.DataFrame(rows, columns=["tag", "commit"])

    # -- labels at a point, and between two points --------------------------------------------
    def labels(self, at: str | None = None) -> pd.Series:
        """item_id -> label: the labels now on this branch (`at=None`), or at a commit."""
        with self._lock:
            view = self._view().frame() if at is None else self._view_at(self.rev(at).frontier)
            return views.label_series(view)

    def current_labels_at(self, at: str) -> pd.DataFrame:
        """Like `current_labels()`, at a commit: who labeled each item, when, why."""
        with self._lock:
            return views.labels(self._view_at(self.rev(at).frontier))

    def diff(self, a: str, b: str | None = None) -> pd.DataFrame:
        """How labels differ from `a` to `b` (None: the current, uncommitted state): one row
        per item whose label differs (`change`: added, removed or changed), with who made
        the change, when, its source and the role the item was shown in."""
        with self._lock:
            fa = self.rev(a).frontier
            fb = None if b is None else self.rev(b).frontier
            return self._diff(fa, fb)

    def _diff(self, fa: dict, fb: dict | None) -> pd.DataFrame:
        columns = ["item_id", "before", "after", "change", "annotator", "time", "source", "query",
                   "event_id"]
        log, pos_a, pos_b, keys = self._labels_between(fa, fb)
        # Compare item by item on integer positions; only the labels of the deciding events
        # are read (a million-row label column is never converted).
        at_a = np.full(len(keys._items), -1)
        at_b = at_a.copy()
        at_a[keys.item[pos_a]], at_b[keys.item[pos_b]] = pos_a, pos_b
        touched = np.flatnonzero((at_a >= 0) | (at_b >= 0))
        sides = []
        for at in (at_a[touched], at_b[touched]):
            label = np.full(len(at), None, dtype=object)
            label[at >= 0] = log["label"].iloc[at[at >= 0]].to_numpy(dtype=object)
            sides.append(label)
        was, now = sides
        changed = np.flatnonzero(was != now)
        was, now = was[changed], now[changed]
        ra, rb = at_a[touched[changed]], at_b[touched[changed]]
        who = self._trace(log.iloc[np.where(rb >= 0, rb, ra)].reset_index(drop=True))  # who changed it
        frame = who[["item_id", *columns[4:]]].copy()
        frame["change"] = np.where(ra < 0, "added", np.where(rb < 0, "removed", "changed"))
        frame["before"] = pd.Series(was, dtype=object)  # None stays None, not NaN
        frame["after"] = pd.Series(now, dtype=object)
        return frame[columns].sort_values("item_id", ignore_index=True)

    def _changes(self, fa: dict, fb: dict | None) -> dict[str, tuple]:
        """item -> (label at fa, label at fb) for every item whose label differs."""
        frame = self._diff(fa, fb)
        return dict(zip(frame["item_id"], zip(frame["before"], frame["after"])))

    def _labels_between(self, fa: dict, fb: dict | None) -> tuple:
        """The log, and the positions in it of the events that decide each labeled item at
        frontier `fa` and at `fb` (None: this branch's scope), for the items whose events
        differ between the two: everything else is equal anyway. Also the log's Keys."""
        log = self._all_events()
        keys = self._keys(log)
        in_a = views.frontier_mask(log, fa, keys)
        if fb is None:
            self._view()
            in_b = np.zeros(len(log), dtype=bool)
            in_b[log.index.get_indexer(self._scope_log().index)] = True
        else:
            in_b = views.frontier_mask(log, fb, keys)
        differs = np.zeros(len(keys._items), dtype=bool)  # a mask, not np.unique: no sort
        differs[keys.item[in_a != in_b]] = True
        near = differs[keys.item]
        labeling = views.isin(log["action"], views.LABELING)
        sides = []
        for inside in (in_a, in_b):
            scope = near & inside
            undone = _undone(log, scope)
            winners = views.latest_positions(log, scope & views.effective_mask(log, undone), keys)
            sides.append(winners[labeling[winners]])
        return log, sides[0], sides[1], keys

    def _trace(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Who and why for events (rows with annotator, time, source, query, event_id, target):
        a copy made by merge, revert or restore gets the fields of the event it copies, so
        blame and diff name the person, not the merge."""
        rows = rows.copy()
        copied = rows["source"].isin(PROVENANCE).to_numpy() & rows["target"].notna().to_numpy()
        if not copied.any():
            return rows
        fields = ["annotator", "time", "source", "query", "target"]
        log = self._all_events()
        originals = log[views.isin(log["event_id"], set(rows.loc[copied, "target"]))]
        lookup = originals.set_index("event_id")[fields]
        for _ in range(20):  # a copy of a copy...: follow each chain to its first event
            copied = rows["source"].isin(PROVENANCE).to_numpy() & rows["target"].notna().to_numpy()
            if not copied.any():
                break
            found = lookup.reindex(rows.loc[copied, "target"])
            known = found["annotator"].notna().to_numpy()
            at = rows.index[copied][known]
            rows.loc[at, "event_id"] = rows.loc[at, "target"].to_numpy()
            for column in fields:
                rows.loc[at, column] = found[column].to_numpy()[known]
            rows.loc[rows.index[copied][~known], "target"] = None  # not here: stop following
            more = set(rows.loc[at, "target"].dropna()) - set(lookup.index)
            if more:
                extra = log[views.isin(log["event_id"], more)].set_index("event_id")[fields]
                lookup = pd.concat([lookup, extra])
        return rows

    def _view_at(self, frontier: dict) -> pd.DataFrame:
        """The state of every item at a frontier (like `views.latest(views.as_of(...))`, on
        the log's cached Keys: no column of the log is copied)."""
        log = self._all_events()
        keys = self._keys(log)
        inside = views.frontier_mask(log, frontier, keys)
        undone = _undone(log, inside)
        positions = views.latest_positions(log, inside & views.effective_mask(log, undone), keys)
        return log.iloc[positions].set_index("item_id")[views.VIEW_COLUMNS]

    # -- who labeled what ------------------------------------------------------------------------
    def blame(self, item_ids=None) -> pd.DataFrame:
        """For each labeled item on this branch (or those given): its label, who gave it,
        when, the source (human, suggestion, import, merge...), the role the item was shown
        in, and the commit that introduced it (None while uncommitted). Labels a merge, revert
        or restore brought in are traced back to the event they copy. `confirmed_by` and
        `confirmed_at`: the review that last kept the label, while it stands (else None)."""
        columns = ["label", "annotator", "time", "source", "query", "commit", "event_id",
                   "confirmed_by", "confirmed_at"]
        with self._lock:
            full = self._view().frame()
            full = full[full["action"].isin(views.LABELING).to_numpy()]
            if item_ids is not None:
                full = full[full.index.isin([str(i) for i in item_ids])]
            frame = self._trace(full)
            frame["commit"] = pd.Series(  # None while uncommitted (pandas would make it NaN)
                self._introduced_in(full["writer"].to_numpy(), full["seq"].to_numpy()),
                index=frame.index, dtype=object)
            confirmed = self.confirmations().reindex(frame.index)
            frame["confirmed_by"] = confirmed["annotator"].astype(object).where(
                confirmed["annotator"].notna(), None)
            frame["confirmed_at"] = pd.to_datetime(confirmed["time"], utc=True)
            return frame[columns]

    def blame_line(self, item_id: str) -> dict | None:
        """The blame of one item, cheaply (for the labeling widget): label, annotator, time,
        source, role and commit of the event that decides its label; None when unlabeled."""
        with self._lock:
            top = self._view().top(str(item_id))
            if views._label(top) is None:
                return None
            who = self._provenance(top)
            commit = self._introduced_in(np.array([top["writer"]]), np.array([top["seq"]]))[0]
            return {"label": top["label"], "annotator": who.get("annotator"),
                    "time": pd.Timestamp(who.get("time")), "source": who.get("source"),
                    "query": who.get("query"), "commit": commit}

    def _introduced_in(self, writers: np.ndarray, seqs: np.ndarray) -> list:
        """For each event, the oldest commit leading to HEAD whose frontier holds it."""
        found = np.full(len(seqs), None, dtype=object)
        head = self._head_id()
        if head is None:
            return list(found)
        cached = getattr(self, "_ancestry", None)
        if cached is None or cached[0] != head:  # parents first, kept until the head moves
            cached = (head, sorted((self._commit(c) for c in self._ancestors(head)),
                                   key=lambda c: (self._generation(c.id), c.time, c.id)))
            self._ancestry = cached
        commits = cached[1]
        events = pd.DataFrame({"writer": writers, "seq": seqs})
        for commit in commits:
            inside = views.frontier_mask(events, commit.frontier)
            new = inside & (found == None)  # noqa: E711 - an object array of ids and None
            found[new] = commit.short
        return list(found)

    def _provenance(self, row: dict) -> dict:
        """`_trace` for one event (a dict)."""
        seen = 0
        while row.get("source") in PROVENANCE and row.get("target") and seen < 50:
            original = self._find(row["target"])
            if original is None:
                break
            row, seen = {**original, "item_id": row.get("item_id")}, seen + 1
        return row

    def item_history(self, item_id: str) -> pd.DataFrame:
        """Every event on one item, on every branch, oldest first; `in_scope` says which
        ones this branch sees, `undone` which ones an undo in scope takes back."""
        with self._lock:
            self._view()
            log = self._all_events()
            rows = log[(log["item_id"] == str(item_id)).to_numpy()].sort_values(views.ORDER)
            scope = set(self._scope_log()["event_id"])
            rows = rows.assign(in_scope=rows["event_id"].isin(scope),
                               undone=rows["event_id"].isin(self._retracted))
            return rows.reset_index(drop=True)

    # -- making history -----------------------------------------------------------------------------
    def commit(self, message: str, author: str | None = None) -> Commit:
        """Record the current labels of this branch as a commit (no copy of them is written).
        During a merge, this completes it once every conflict is resolved."""
        if not isinstance(message, str) or not message.strip():
            raise StoreError(f"a commit needs a message (a non-empty str), got {message!r}")
        author = author or self.annotator
        with self._lock, files.locked(self._lock_path()):
            return self._commit_locked(message.strip(), author)

    def _commit_locked(self, message: str, author: str) -> Commit:
        """commit(), for a caller that holds the handle's lock and the history lock."""
        merging = self._merge_state()
        if merging is not None:
            self._complete_merge_writes(merging)  # a merge another process left half written
        view = self._view()
        parents = [p for p in (self._head_id(),) if p]
        if merging is not None:
            open_ = sorted(set(merging["conflicts"]) - set(merging["resolved"]))
            if open_:
                raise StoreError(f"a merge of {merging['theirs'][:7]} is in progress with "
                                 f"{len(open_)} unresolved conflicts ({', '.join(open_[:5])}"
                                 f"{' ...' if len(open_) > 5 else ''}); resolve each with ", RESOLVE,
                                 ", or ", ABORT_MERGE)
            parents.append(merging["theirs"])
        changes = view.changes()
        if not changes and merging is None:
            raise StoreError(f"nothing to commit on branch {self.current_branch!r}: the labels are "
                             f"those of {parents[0][:7] if parents else 'the empty store'}")
        frontier = dict(self._frontier)
        for writer, count in self._local_counts.items():
            frontier[writer] = max(frontier.get(writer, 0), count)
        commit = self._write_commit(parents, author, message, view.n_labels,
                                    view.labels_hash, changes, frontier)
        if merging is not None:
            (self._hdir() / self._merging_name()).unlink(missing_ok=True)
        view.mark()
        self._scope_key, self._frontier = (commit.id, None), frontier
        return commit

    def _write_commit(self, parents, author, message, n_labels, labels_hash, changes,
                      frontier) -> Commit:
        counts = {"added": 0, "changed": 0, "removed": 0}
        for was, now in changes.values():
            counts["added" if was is None else "removed" if now is None else "changed"] += 1
        body = {"parents": list(parents), "branch": self.current_branch, "author": author,
                "time": clock.wall_clock().isoformat(timespec="microseconds"),
                "message": message, "n_labels": n_labels, "labels_hash": labels_hash,
                **counts, "frontier": dict(sorted(frontier.items()))}
        commit_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:40]
        commit = Commit(id=commit_id, **{**body, "parents": tuple(parents)})
        folder = self._hdir() / "commits"
        folder.mkdir(parents=True, exist_ok=True)
        files.write_durably(folder, f"{commit_id}.json", json.dumps(asdict(commit)).encode())
        self._set_ref("heads", self.current_branch, commit_id)  # only now is the commit on the branch
        self._commit_cache[commit_id] = commit
        return commit

    def _snapshot(self, frontier: dict, parents: list[str], message: str) -> Commit:
        """Commit the labels of a frontier on this branch (a clone's starting point)."""
        with self._lock, files.locked(self._lock_path()):
            labeled = views.labels(self._view_at(frontier))
            commit = self._write_commit(parents, self.annotator, message, len(labeled),
                                        views.labels_hash(labeled.index, labeled["label"]), {},
                                        frontier)
        self._view()
        return commit

    def tag(self, name: str, ref: str = "HEAD") -> Commit:
        """Name a commit for good (a model you shipped, say)."""
        check_name(name, "tag")
        with files.locked(self._lock_path()):
            if (self._hdir() / "refs" / "tags" / name).exists():
                raise StoreError(f"tag {name!r} exists already (at "
                                 f"{self.rev(name).short}); tags do not move, pick another name")
            commit = self.rev(ref)
            self._set_ref("tags", name, commit.id)
            return commit

    def branch(self, name: str, at: str = "HEAD") -> Commit:
        """Start a branch at a commit; open it with LabelStore.open(path, branch=name). Its
        labels change only with the events written on it, until it is merged."""
        check_name(name, "branch")
        with files.locked(self._lock_path()):
            if name in self.branches()["branch"].tolist():
                raise StoreError(f"branch {name!r} exists already; branches: "
                                 f"{', '.join(self.branches()['branch'])}")
            commit = self.rev(at)
            self._set_ref("heads", name, commit.id)
            return commit

    def revert(self, ref: str, message: str | None = None) -> Commit:
        """Take back one commit's changes (against its first parent) with new events, and
        commit that. Refused when an item it changed has changed again since."""
        with self._lock, files.locked(self._lock_path()):
            self._require_clean("revert")
            commit = self.rev(ref)
            parent = commit.parents[0] if commit.parents else None
            back = self._changes(self._commit_frontier(parent), commit.frontier)
            if not back:
                raise StoreError(f"commit {commit.short} changed no labels; nothing to revert")
            view = self._view()
            moved = sorted(i for i, (_, after) in back.items() if view.label(i) != after)
            if moved:
                raise StoreError(f"cannot revert {commit.short}: {len(moved)} of its items changed "
                                 f"again since ({', '.join(moved[:5])}{' ...' if len(moved) > 5 else ''}"
                                 "); use ", RESTORE, " to make the labels equal to a commit")
            targets = {item: before for item, (before, _) in back.items()}
            return self._fix_and_commit(targets, "revert", [self._commit_frontier(parent)],
                                        message or f"Revert {commit.short}: {commit.message}")

    def restore(self, ref: str, message: str | None = None) -> Commit:
        """Make this branch's labels equal to a commit's, with new events, and commit that."""
        with self._lock, files.locked(self._lock_path()):
            self._require_clean("restore")
            commit = self.rev(ref)
            change = self._changes(commit.frontier, None)
            if not change:
                raise StoreError(f"the labels are already those of {commit.short}; nothing to "
                                 "restore")
            return self._fix_and_commit({item: before for item, (before, _) in change.items()},
                                        "restore", [commit.frontier],
                                        message or f"Restore {commit.short}: {commit.message}")

    # -- merge ---------------------------------------------------------------------------------------
    def merge(self, ref: str, message: str | None = None) -> MergeResult:
        """Bring another branch's (or commit's) changes into this branch. Every change only
        one side made is taken; an item both sides changed to different labels since they
        diverged is a conflict: the merge then waits, `conflicts()` lists them, `resolve()`
        settles each, and `commit()` completes it (or `abort_merge()` drops it)."""
        with self._lock, files.locked(self._lock_path()):
            if self._merge_state() is not None:
                raise StoreError("a merge is in progress on this branch: resolve its conflicts (",
                                 CONFLICTS, ") and commit, or ", ABORT_MERGE)
            if isinstance(ref, str) and ref == self.current_branch:
                raise StoreError(f"cannot merge branch {ref!r} into itself")
            theirs = self.rev(ref)
            self._require_clean("merge")
            head = self._head_id()
            if head is not None and theirs.id in self._ancestors(head):
                raise StoreError(f"already up to date: {theirs.short} is part of {self.current_branch!r}")
            if head is None or head in self._ancestors(theirs.id):  # nothing of ours to keep
                self._set_ref("heads", self.current_branch, theirs.id)
                return MergeResult(theirs, True, theirs.n_labels, _conflict_frame({}))
            base = self._merge_base(head, theirs.id)
            fb, fo, ft = self._commit_frontier(base), self._commit_frontier(head), theirs.frontier
            items = self._touched(fb, fo) | self._touched(fb, ft)
            b, o, t = (self._labels_for(f, items) for f in (fb, fo, ft))
            target, conflicts, taken = {}, {}, 0
            for item in sorted(items):
                was, ours, their = b.get(item), o.get(item), t.get(item)
                if ours == their or their == was:
                    target[item] = ours
                elif ours == was:
                    target[item], taken = their, taken + 1
                else:
                    target[item] = ours  # kept until resolved
                    conflicts[item] = {"base": was, "ours": ours, "theirs": their}
            # The one record of the merge, written before any of its events: everything after
            # it is replayed from it should the process die (see _complete_merge_writes).
            state = {"theirs": theirs.id, "base": base, "head": head, "conflicts": conflicts,
                     "resolved": {}, "target": target,
                     "message": message or f"Merge {ref if isinstance(ref, str) else theirs.short} "
                                           f"({theirs.short}) into {self.current_branch}"}
            self._write_merge_state(state)
            self._complete_merge_writes(state)
            if conflicts:
                return MergeResult(None, False, taken, self.conflicts())
            return MergeResult(self._commit_locked(state["message"], self.annotator), False, taken,
                               _conflict_frame({}))

    def conflicts(self) -> pd.DataFrame:
        """The items of the merge in progress that both sides changed, not yet resolved."""
        state = self._merge_state()
        if state is None:
            return _conflict_frame({})
        open_ = {i: c for i, c in state["conflicts"].items() if i not in state["resolved"]}
        return _conflict_frame(open_)

    def resolve(self, item_id: str, label: str | None):
        """Settle a conflict of the merge in progress: the item's label becomes `label` (None:
        no label), as a new event of this branch."""
        with self._lock, files.locked(self._lock_path()):
            state = self._merge_state()
            item_id = str(item_id)
            if state is None:
                raise StoreError("no merge is in progress on this branch; nothing to resolve")
            if item_id not in state["conflicts"]:
                raise StoreError(f"item {item_id!r} is not in conflict; the conflicts are "
                                 f"{sorted(state['conflicts'])[:10]}")
            current = self.labels().get(item_id)
            if label is None:
                event = self.append(item_id, None, action="remove", source="human", query="merge")
            else:
                event = self.append(item_id, str(label), action="relabel" if current else "label",
                                    source="human", query="merge")
            state["resolved"][item_id] = event.event_id
            self._write_merge_state(state)
            return event

    def abort_merge(self) -> None:
        """Drop the merge in progress: its events are taken back (one undo each)."""
        with self._lock, files.locked(self._lock_path()):
            state = self._merge_state()
            if state is None:
                raise StoreError("no merge is in progress on this branch")
            self._refresh()  # a fresh handle has not read the merge's events yet
            ids = [e for e in state.get("events", []) + list(state["resolved"].values())
                   if e not in self._retracted and self._find(e) is not None]
            if ids:
                self.retract(ids)
            (self._hdir() / self._merging_name()).unlink(missing_ok=True)
            self._view()

    # -- internals -------------------------------------------------------------------------------------
    def _fix_and_commit(self, target: dict, source: str, origins: list[dict], message: str) -> Commit:
        """Revert and restore: write the events that make the labels `target`, and commit.
        The plan is recorded first, so a process killed anywhere in between leaves either
        nothing or a plan that the next open finishes (`_finish_pending`)."""
        rows = self._fix_rows(target, source, origins)
        plan = {"head": self._head_id(), "message": message, "fixes": rows, "source": source}
        files.write_durably(self._hdir(), self._pending_name(), json.dumps(plan).encode())
        self._write_rows(rows)
        commit = self._commit_locked(message, self.annotator)
        (self._hdir() / self._pending_name()).unlink(missing_ok=True)
        return commit

    def _write_rows(self, rows: list[dict]) -> None:
        """Write those of these fix events that are not in the log yet (ids are minted in the
        plan, so writing a plan twice writes each event once)."""
        self._refresh()  # another handle may have written them: read the log first
        missing = [r for r in rows if self._find(r["event_id"]) is None]
        if missing:
            self.append_many(missing, source=missing[0]["source"])

    def _fix_rows(self, target: dict, source: str, origins: list[dict]) -> list[dict]:
        """Events that make each item's label what `target` says (None: no label), for the
        items where the fold of this branch's scope says otherwise. Each names the event it
        copies: the item's event at the first of the `origins` (frontiers) that has that label."""
        view = self._view()
        log = self._all_events()
        near = log[views.isin(log["item_id"], target)]
        tops = [views.latest(views.as_of(near, f)) for f in origins]
        rows = []
        for item, label in sorted(target.items()):
            if view.label(item) == label:
                continue
            copied = next((top.at[item, "event_id"] for top in tops if item in top.index
                           and views._label(top.loc[item].to_dict()) == label), None)
            action = "remove" if label is None else ("relabel" if view.label(item) else "label")
            rows.append({"item_id": item, "label": label, "action": action, "source": source,
                         "query": source, "target": copied, "event_id": uuid.uuid4().hex})
        return rows

    def _touched(self, fa: dict, fb: dict) -> set[str]:
        """Items with an event inside one frontier and not the other."""
        log = self._all_events()
        in_a, in_b = views.frontier_mask(log, fa), views.frontier_mask(log, fb)
        return set(log.loc[in_a != in_b, "item_id"].dropna())

    def _labels_for(self, frontier: dict, items: set[str]) -> dict[str, str]:
        """item -> label at a frontier, for these items (unlabeled ones are absent)."""
        log = self._all_events()
        near = log[views.isin(log["item_id"], items)]
        return views.labels(views.latest(views.as_of(near, frontier)))["label"].to_dict()

    def _require_clean(self, what: str) -> None:
        changes = self._view().changes()
        if changes:
            raise StoreError(f"cannot {what} with {len(changes)} uncommitted changes on branch "
                             f"{self.current_branch!r} ({', '.join(sorted(changes)[:5])}"
                             f"{' ...' if len(changes) > 5 else ''}); commit them first")

    def _keys(self, log: pd.DataFrame) -> views.Keys:
        """The Keys of the whole log, extended as it grows (the log is append-only)."""
        keys = getattr(self, "_log_keys", None)
        if keys is None or keys.n > len(log):
            keys = views.Keys(log)
        self._log_keys = keys.extend(log)
        return keys

    def _all_events(self) -> pd.DataFrame:
        """The whole log, with whatever other writers added since the last look."""
        self._refresh()
        return self._log()

    def _hdir(self) -> Path:
        return self.path / HISTORY

    def _lock_path(self) -> Path:
        self._hdir().mkdir(exist_ok=True)
        return self._hdir() / ".lock"

    def _set_ref(self, kind: str, name: str, commit_id: str) -> None:
        folder = self._hdir() / "refs" / kind
        if "/" in name:
            folder, name = folder / name.rsplit("/", 1)[0], name.rsplit("/", 1)[1]
        folder.mkdir(parents=True, exist_ok=True)
        files.write_durably(folder, name, f"{commit_id}\n".encode())

    def _head_id(self, branch: str | None = None) -> str | None:
        try:
            return (self._hdir() / "refs" / "heads" / (branch or self.current_branch)).read_text().strip()
        except FileNotFoundError:
            return None

    @property
    def _commit_cache(self) -> dict:
        if not hasattr(self, "_commits_read"):
            self._commits_read = {}
        return self._commits_read

    def _commit(self, commit_id: str) -> Commit:
        cached = self._commit_cache.get(commit_id)
        if cached is None:
            path = self._hdir() / "commits" / f"{commit_id}.json"
            try:
                data = json.loads(path.read_text())
            except FileNotFoundError:
                raise StoreError(f"commit {commit_id!r} is missing from {self.path}") from None
            cached = Commit(**{**data, "parents": tuple(data["parents"])})
            self._commit_cache[commit_id] = cached
        return cached

    def _commit_ids(self) -> list[str]:
        folder = self._hdir() / "commits"
        if not folder.is_dir():
            return []
        return [n[:-5] for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")]

    def _commit_frontier(self, commit_id: str | None) -> dict:
        return {} if commit_id is None else self._commit(commit_id).frontier

    def _ancestors(self, commit_id: str) -> set[str]:
        seen, todo = set(), [commit_id]
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                todo.extend(self._commit(c).parents)
        return seen

    def _generation(self, commit_id: str) -> int:
        """1 + the longest chain of parents behind a commit: a parent always has a lower one.
        Commits never change, so the number is kept."""
        known = self.__dict__.setdefault("_generations", {})
        todo = [commit_id]
        while todo:  # iterative: a long history must not hit the recursion limit
            c = todo[-1]
            if c in known:
                todo.pop()
                continue
            parents = self._commit(c).parents
            missing = [p for p in parents if p not in known]
            if missing:
                todo.extend(missing)
            else:
                known[c] = 1 + max((known[p] for p in parents), default=0)
                todo.pop()
        return known[commit_id]

    def _merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor, found by ancestry, never by the commits' wall clocks: a
        common ancestor of `a` and `b` that no other common ancestor descends from (the
        deepest, should a criss-cross merge leave several). None: no shared history."""
        common = self._ancestors(a) & self._ancestors(b)
        if not common:
            return None
        below = set()
        for c in common:
            below |= self._ancestors(c) - {c}
        best = common - below
        return max(best, key=lambda c: (self._generation(c), c))

    def _merge_state(self) -> dict | None:
        try:
            return json.loads((self._hdir() / self._merging_name()).read_text())
        except FileNotFoundError:
            return None

    def _write_merge_state(self, state: dict) -> None:
        self._hdir().mkdir(exist_ok=True)
        files.write_durably(self._hdir(), self._merging_name(), json.dumps(state).encode())

    def _read_scope(self) -> tuple[tuple, dict]:
        """(head commit, merging commit) and the frontier of the events they hold."""
        head = self._head_id()
        merging = self._merge_state()
        frontier = dict(self._commit_frontier(head))
        if merging is not None:
            for writer, count in self._commit(merging["theirs"]).frontier.items():
                frontier[writer] = max(frontier.get(writer, 0), count)
        return (head, None if merging is None else merging["theirs"]), frontier

    def _complete_merge_writes(self, state: dict) -> None:
        """Write the events a recorded merge takes (its `target` labels), once: a merge that
        died after recording its state is finished from that state, never from a fold of
        the two sides (which would give the later event, not the three-way result)."""
        if "fixes" not in state:
            if "target" not in state:  # recorded by a workbench before 2026-12
                return
            self._view()  # the scope now includes their side
            theirs = self._commit(state["theirs"]).frontier
            state["fixes"] = self._fix_rows(state["target"], "merge",
                                            [theirs, self._commit_frontier(state["head"])])
            state["events"] = [r["event_id"] for r in state["fixes"]]
            self._write_merge_state(state)  # the ids are fixed before any event is written
        self._write_rows(state["fixes"])

    def _finish_interrupted(self) -> None:
        """On open: finish what a killed process left half done on this branch. A merge
        completes its writes (and commits when it had no conflicts to wait for), a revert or
        restore writes its events and commits; a record whose commit was made is dropped."""
        records = (self._merging_name(), self._pending_name())
        if not any((self._hdir() / name).exists() for name in records):
            return  # the usual case: no lock taken, so opening never waits for a merge
        with self._lock, files.locked(self._lock_path()):
            head = self._head_id()
            state = self._merge_state()
            if state is not None and "head" in state:
                if head != state["head"] and state["theirs"] in self._ancestors(head):
                    (self._hdir() / self._merging_name()).unlink()  # committed
                else:
                    self._complete_merge_writes(state)
                    if not state["conflicts"]:
                        self._commit_locked(state["message"], self.annotator)
            try:
                plan = json.loads((self._hdir() / self._pending_name()).read_text())
            except FileNotFoundError:
                return
            if plan["head"] == head:  # its commit was not made yet
                self._write_rows(plan["fixes"])
                if self._view().changes():
                    self._commit_locked(plan["message"], self.annotator)
            (self._hdir() / self._pending_name()).unlink()

    def _pending_name(self) -> str:
        return f"pending-{self.current_branch}.json"  # a revert or restore's plan

    def _merging_name(self) -> str:
        return f"merging-{self.current_branch}.json"  # a merge in progress


def _conflict_frame(conflicts: dict) -> pd.DataFrame:
    rows = [{"item_id": i, **c} for i, c in sorted(conflicts.items())]
    return pd.DataFrame(rows, columns=["item_id", "base", "ours", "theirs"])


def _undone(log: pd.DataFrame, mask: np.ndarray) -> set[str]:
    """The event ids that the undo events among the masked rows take back (read from those
    few rows: converting a million-row string column costs a tenth of a second)."""
    return set(log["target"].iloc[np.flatnonzero(mask & (log["action"] == "undo").to_numpy())])
