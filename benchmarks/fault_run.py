"""Fault run: kill -9 at random points of every write the label store makes, and two processes
racing on one shared folder; what survives is checked against what was acknowledged.

Single-process kills (tests/store/killing.py: a fork server that imported the store once;
the parent waits for the child to signal the start of the operation, sleeps a stratified
random part of the operation's measured duration, then sends SIGKILL):
  label, undo, commit (label+commit in a loop), merge, revert, restore, compaction (parts
  retired at once and after the default grace period), push, pull, clone, and pull killed
  while a teammate labels, commits and compacts the remote at once.
Two processes at once, no kill:
  pull racing a teammate who labels, commits and compacts (retire_after=0) the shared store;
  push racing a teammate who compacts the shared store; two clones pushing to one folder.

After each trial the store is reopened (LabelStore.open finishes interrupted merges,
reverts and restores) and checked:
  lost        acknowledged event ids (or commits) not in store.events() (or the history)
  duplicated  rows of store.events() whose event_id, or (writer, seq), appears twice
  phantom     status()["uncommitted"] differs from what it should be (or from diff("HEAD")),
              or labels(at="HEAD").size != rev("HEAD").n_labels
  refs_past   refs (heads, remotes/*) naming events the store does not hold
  wrong       a killed merge/revert/restore/push/pull/clone that neither never happened nor
              finished to the expected labels, a clone that is not whole, an error on reopen
All five must be zero. `killed` counts kills that landed inside the operation, `finished`
trials where the operation ended before the kill was due (no kill sent).

    python benchmarks/fault_run.py [--scale 1.0] [--dir /some/disk]  ->  results/fault_run.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "store"))
import killing  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

from workbench.store import LabelStore, StoreError  # noqa: E402
from workbench.store.sync import clone, pull, push  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "fault_run.json"
FAILURES_KEPT = 30  # per run, the first failures are written out in full
REACH = 1.15  # kills spread over [0, REACH x the operation's median duration]
PAUSE = 0.005  # a racing teammate's seconds between labels (the store must stay small)


@dataclass
class Row:
    op: str
    trials: int = 0
    killed: int = 0      # kills that landed inside the operation
    finished: int = 0    # the operation ended before its kill was due
    acked: int = 0       # acknowledged events checked
    acked_commits: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    refs_past: int = 0
    wrong: int = 0
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def fail(self, trial, what: str) -> None:
        if len(self.failures) < FAILURES_KEPT:
            self.failures.append(f"trial {trial}: {what}")

    @property
    def bad(self) -> int:
        return self.lost + self.duplicated + self.phantom + self.refs_past + self.wrong


# -- checks ------------------------------------------------------------------------------------
def refs_past(store: LabelStore) -> list[str]:
    """Refs (heads, remotes/*) naming events the store does not hold (test_sharing.whole)."""
    bad = []
    for branch in store.branches()["branch"]:
        if store._head_id(branch) and store.missing_events(store.rev(branch).frontier):
            bad.append(f"heads/{branch}")
    remotes = store._hdir() / "refs" / "remotes"
    for path in sorted(remotes.rglob("*")) if remotes.is_dir() else ():
        if path.is_file() and not path.name.startswith("."):
            commit = store._commit(path.read_text().strip())
            if store.missing_events(commit.frontier):
                bad.append(f"remotes/{path.parent.name}/{path.name}")
    return bad


def inspect(path, row: Row, trial, *, acked=(), commits=(), uncommitted=None) -> LabelStore:
    """Reopen the store at `path` and count what was lost, duplicated, phantom or past."""
    store = LabelStore.open(path)
    events = store.events()
    ids = set(events["event_id"])
    lost = [e for e in acked if e not in ids]
    history = set(store._commit_ids())
    lost += [c for c in commits if c not in history]
    row.acked += len(acked)
    row.acked_commits += len(commits)
    if lost:
        row.lost += len(lost)
        row.fail(trial, f"{len(lost)} acknowledged ids missing, e.g. {lost[0]}")
    twice = events["event_id"].duplicated() | events[["writer", "seq"]].duplicated()
    if twice.any():
        row.duplicated += int(twice.sum())
        row.fail(trial, f"{int(twice.sum())} duplicated events")
    status = store.status()
    if status["head"] is not None:
        n_diff = len(store.diff("HEAD"))
        head = store.rev("HEAD")
        at_head = store.labels(at="HEAD").size
        if (status["uncommitted"] != n_diff or at_head != head.n_labels
                or (uncommitted is not None and status["uncommitted"] != uncommitted)):
            row.phantom += 1
            row.fail(trial, f"uncommitted {status['uncommitted']} (expected {uncommitted}), "
                            f"diff(HEAD) {n_diff} rows, labels(at=HEAD) {at_head} vs n_labels "
                            f"{head.n_labels}")
    past = refs_past(store)
    if past:
        row.refs_past += len(past)
        row.fail(trial, f"refs past their events: {past}")
    return store


def within(events: pd.DataFrame, frontier: dict) -> pd.Series:
    """Which events a frontier (a commit's) holds: seq below its writer's count."""
    counts = [frontier.get(w, 0) for w in events["writer"]]
    return pd.Series(events["seq"].to_numpy() < counts, index=events.index)


def count_kill(row: Row, killed: bool) -> None:
    row.trials += 1
    row.killed += killed
    row.finished += not killed


def aim(work, args, template: Path, tmp: Path, copies_of=None) -> float:
    """The operation's median duration, measured on three copies of the template."""
    copies = []
    for k in range(3):
        dest = tmp / f"measure-{work.__name__}-{k}"
        (copies_of or _copy)(template, dest)
        copies.append(str(dest))
    span = killing.duration(work, *args, copies=copies)
    for c in copies:
        shutil.rmtree(c, ignore_errors=True)
    return span


def _copy(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def _repoint(laptop: Path, shared: Path) -> None:
    """A copied clone's origin is the copied shared folder (the meta file records the path)."""
    meta_path = laptop / "_workbench.json"
    meta = json.loads(meta_path.read_text())
    meta["remotes"] = {"origin": str(shared.resolve())}
    meta_path.write_text(json.dumps(meta, sort_keys=True))


def trials(row: Row, n: int, span: float, seed: int, one_trial, reach: float = REACH) -> None:
    """Run n trials, killing at stratified points over [0, reach * span] (past the measured
    median a little: on a busy machine the operation in the child runs longer, and its last
    steps, a ref moving, must be hit too); a trial that raises counts as wrong."""
    start = time.perf_counter()
    row.notes["span_ms"] = round(span * 1e3, 2)
    row.notes["kills_over_ms"] = round(reach * span * 1e3, 2)
    for k, delay in enumerate(killing.random_delays(n, reach * span, seed)):
        try:
            one_trial(k, delay)
        except Exception as err:  # noqa: BLE001 - counted and reported, the run goes on
            row.wrong += 1
            row.fail(k, f"{type(err).__name__}: {err} | "
                        f"{traceback.format_exc().strip().splitlines()[-3:]}")
    row.seconds = round(time.perf_counter() - start, 1)


# -- single-process kills ------------------------------------------------------------------------
def run_label(tmp: Path, n: int) -> Row:
    row = Row("label")
    template = tmp / "label-template"
    store = LabelStore.open(template, annotator="seed")
    store.append("seed", "0")
    store.commit("seed")
    per = 20
    span = aim(killing.label_work, (None, str(tmp / "scratch-ack"), per, "n"), template, tmp)

    def one(k, delay):
        trial, ack = _copy(template, tmp / f"label-{k}"), tmp / f"label-{k}.ack"
        count_kill(row, killing.run(killing.label_work, str(trial), str(ack), per, "n",
                                    kill_after=delay))
        acked = [line[0] for line in killing.acked(ack)]
        written = LabelStore.reader(trial).events()
        new_items = written.loc[written["annotator"] == "labeler", "item_id"].nunique()
        inspect(trial, row, k, acked=acked, uncommitted=new_items)
        shutil.rmtree(trial)
    trials(row, n, span, 11, one)
    row.notes["what"] = f"{per} appends, each acked as it returns"
    return row


def run_undo(tmp: Path, n: int) -> Row:
    row = Row("undo")
    template = tmp / "undo-template"
    store = LabelStore.open(template, annotator="ann")
    targets = [store.append(f"i{k}", str(k % 10)).event_id for k in range(20)]
    store.commit("twenty")
    span = aim(killing.undo_work, (None, str(tmp / "scratch-ack"), targets), template, tmp)

    def one(k, delay):
        trial, ack = _copy(template, tmp / f"undo-{k}"), tmp / f"undo-{k}.ack"
        count_kill(row, killing.run(killing.undo_work, str(trial), str(ack), targets,
                                    kill_after=delay))
        acked = [line[0] for line in killing.acked(ack)]
        undos = (LabelStore.reader(trial).events()["action"] == "undo").sum()
        store = inspect(trial, row, k, acked=targets + acked, uncommitted=int(undos))
        if store.labels().size != len(targets) - undos:
            row.wrong += 1
            row.fail(k, f"{store.labels().size} labels after {undos} undos of {len(targets)}")
        shutil.rmtree(trial)
    trials(row, n, span, 12, one)
    row.notes["what"] = "20 undos of committed labels, each acked"
    return row


def run_commit(tmp: Path, n: int) -> Row:
    row = Row("commit")
    template = tmp / "commit-template"
    store = LabelStore.open(template, annotator="seed")
    store.append("seed", "0")
    store.commit("seed")
    per = 6
    span = aim(killing.commit_work, (None, str(tmp / "scratch-ack"), per, "c"), template, tmp)

    def one(k, delay):
        trial, ack = _copy(template, tmp / f"commit-{k}"), tmp / f"commit-{k}.ack"
        count_kill(row, killing.run(killing.commit_work, str(trial), str(ack), per, "c",
                                    kill_after=delay))
        lines = killing.acked(ack)
        events = [v for kind, v in lines if kind == "event"]
        commits = [v for kind, v in lines if kind == "commit"]
        reader = LabelStore.reader(trial)
        written = reader.events()
        head = reader.rev("HEAD")
        mine = written[written["annotator"] == "committer"]
        outside = int((~within(mine, head.frontier)).sum())
        store = inspect(trial, row, k, acked=events, commits=commits, uncommitted=int(outside))
        chain = set(store.log()["id"])
        off = [c for c in commits if c not in chain]
        if off:
            row.wrong += 1
            row.fail(k, f"acknowledged commit {off[0][:7]} is not on main")
        shutil.rmtree(trial)
    trials(row, n, span, 13, one)
    row.notes["what"] = f"{per} x (label, commit), each acked"
    return row


def run_merge(tmp: Path, n: int) -> Row:
    row = Row("merge")
    template = tmp / "merge-template"
    expected = killing.diverged(template)
    before = LabelStore.reader(template)
    before_ids = list(before.events()["event_id"])
    span = aim(killing.merge_acked_work, (None, "b", str(tmp / "scratch-ack")), template, tmp)
    row.notes["never_happened"] = row.notes["finished_on_open"] = 0

    def one(k, delay):
        trial, ack = _copy(template, tmp / f"merge-{k}"), tmp / f"merge-{k}.ack"
        count_kill(row, killing.run(killing.merge_acked_work, str(trial), "b", str(ack),
                                    kill_after=delay))
        acked = [line[0] for line in killing.acked(ack)]
        # reopening finishes a merge that recorded its state (it has no conflicts)
        store = inspect(trial, row, k, acked=before_ids, commits=acked, uncommitted=0)
        merged = len(store.rev("HEAD").parents) == 2
        if acked and store.rev("HEAD").id != acked[0]:
            row.wrong += 1
            row.fail(k, f"merge acked {acked[0][:7]} but HEAD is {store.rev('HEAD').short}")
        if not merged:
            row.notes["never_happened"] += 1
            if store.status()["merging"] is not None or store.labels().to_dict() != \
                    {"x": "2", "z": "7"}:
                row.wrong += 1
                row.fail(k, f"an unmerged store holds {store.labels().to_dict()}")
            store.merge("b")
        elif not acked:
            row.notes["finished_on_open"] += 1
        if store.labels().to_dict() != expected or store.labels(at="HEAD").to_dict() != expected:
            row.wrong += 1
            row.fail(k, f"after the merge: {store.labels().to_dict()}, expected {expected}")
        shutil.rmtree(trial)
    trials(row, n, span, 14, one)
    row.notes["what"] = "three-way merge (x relabeled on both sides), its commit acked"
    return row


def _history_template(path: Path) -> dict:
    """c1: a=1 b=2; c2: a=3 c=4; c3: b=5 d=6. Returns the labels of each, and c1's id."""
    store = LabelStore.open(path, annotator="ann")
    store.append("a", "1")
    store.append("b", "2")
    c1 = store.commit("c1")
    store.append("a", "3", action="relabel")
    store.append("c", "4")
    store.commit("c2")
    store.append("b", "5", action="relabel")
    store.append("d", "6")
    store.commit("c3")
    return {"c1": c1.id, "now": store.labels().to_dict()}


def run_fix(tmp: Path, n: int, what: str) -> Row:
    """revert("HEAD") (c3's changes taken back) or restore(c1)."""
    row = Row(what)
    template = tmp / f"{what}-template"
    info = _history_template(template)
    ids = list(LabelStore.reader(template).events()["event_id"])
    if what == "revert":
        work, ref, expected = killing.revert_work, "HEAD", {"a": "3", "b": "2", "c": "4"}
    else:
        work, ref, expected = killing.restore_work, info["c1"], {"a": "1", "b": "2"}
    span = aim(work, (None, ref, str(tmp / "scratch-ack")), template, tmp)
    row.notes["never_happened"] = row.notes["finished_on_open"] = 0

    def one(k, delay):
        trial, ack = _copy(template, tmp / f"{what}-{k}"), tmp / f"{what}-{k}.ack"
        count_kill(row, killing.run(work, str(trial), ref, str(ack), kill_after=delay))
        acked = [line[0] for line in killing.acked(ack)]
        store = inspect(trial, row, k, acked=ids, commits=acked, uncommitted=0)
        labels = store.labels().to_dict()
        if labels == info["now"] and store.labels(at="HEAD").to_dict() == info["now"]:
            row.notes["never_happened"] += 1
            if acked:
                row.wrong += 1
                row.fail(k, f"{what} acked {acked[0][:7]} but its labels are gone")
        elif labels == expected == store.labels(at="HEAD").to_dict():
            row.notes["finished_on_open"] += not acked
        else:
            row.wrong += 1
            row.fail(k, f"after a killed {what}: {labels}, expected {info['now']} or {expected}")
        shutil.rmtree(trial)
    trials(row, n, span, 15 if what == "revert" else 16, one)
    row.notes["what"] = f"{what} of a three-commit history, its commit acked"
    return row


def run_compact(tmp: Path, n: int) -> Row:
    row = Row("compaction")
    template = tmp / "compact-template"
    store = LabelStore.open(template, annotator="ann")
    for k in range(50):
        store.append(f"i{k}", str(k % 10))
    store.compact(retire_after=0)  # one segment already, then loose parts on top
    for k in range(50):
        store.append(f"i{k % 30}", str((k + 3) % 10), action="relabel")
    store.commit("hundred")
    ids = [store.append(f"j{k}", "1").event_id for k in range(40)]
    for target in ids[:10]:
        store.undo(target)
    reference = LabelStore.open(template)
    labels, at_head = reference.labels().to_dict(), reference.labels(at="HEAD").to_dict()
    uncommitted = reference.status()["uncommitted"]
    ids = list(reference.events()["event_id"])
    retire = {0: 0, 1: None}  # parts deleted at once; kept for the default grace period
    span = aim(killing.compact_work, (None, str(tmp / "scratch-ack"), 0), template, tmp)
    row.notes["parts_in_template"] = sum(1 for p in os.listdir(template) if p.startswith("part-"))

    def one(k, delay):
        trial, ack = _copy(template, tmp / f"compact-{k}"), tmp / f"compact-{k}.ack"
        count_kill(row, killing.run(killing.compact_work, str(trial), str(ack), retire[k % 2],
                                    kill_after=delay))
        for again in (False, True):  # as the kill left it, then compacted again by the next open
            store = inspect(trial, row, f"{k}{' (compacted again)' if again else ''}",
                            acked=ids, uncommitted=uncommitted)
            row.acked -= len(ids) if again else 0  # the same events, checked twice
            if store.labels().to_dict() != labels or store.labels(at="HEAD").to_dict() != at_head:
                row.wrong += 1
                row.fail(k, "labels changed by a killed compaction")
            store.compact(retire_after=0)
        shutil.rmtree(trial)
    trials(row, n, span, 17, one)
    row.notes["what"] = ("compact() of ~150 parts (half retire_after=0, half the default grace), "
                         "then checked, compacted again and checked")
    return row


def _pair(tmp: Path, name: str, laptop_work, shared_work) -> tuple[Path, Path]:
    shared, laptop = tmp / f"{name}-template" / "shared", tmp / f"{name}-template" / "laptop"
    store = LabelStore.open(shared, annotator="ann")
    for k in range(10):
        store.append(f"s{k}", str(k % 10))
    store.commit("start")
    store.branch("review")
    copy = clone(shared, laptop, annotator="bob")
    laptop_work(copy)
    shared_work(store)
    return shared, laptop


def _copy_pair(template: Path, dest: Path) -> Path:
    """Copy a (shared, laptop) pair; `dest` names the laptop; the shared folder is beside it."""
    shared = dest.with_name(dest.name + "-shared")
    _copy(template.with_name("shared"), shared)
    _copy(template, dest)
    _repoint(dest, shared)
    return dest


def _more(store: LabelStore, prefix: str, commits: int = 2, per: int = 5) -> None:
    for c in range(commits):
        for k in range(per):
            store.append(f"{prefix}{c}-{k}", str(k))
        store.append(f"s{c}", "9", action="relabel")
        store.commit(f"{prefix} {c}")


def run_push(tmp: Path, n: int) -> Row:
    row = Row("push")
    _, laptop = _pair(tmp, "push", lambda s: _more(s, "b"), lambda s: None)
    old = LabelStore.reader(laptop.with_name("shared")).rev("HEAD").id
    new = LabelStore.reader(laptop).rev("HEAD").id
    laptop_ids = list(LabelStore.reader(laptop).events()["event_id"])
    span = aim(killing.push_work, (None, str(tmp / "scratch-ack")), laptop, tmp, _copy_pair)
    row.notes["moved"] = 0

    def one(k, delay):
        trial, ack = _copy_pair(laptop, tmp / f"push-{k}"), tmp / f"push-{k}.ack"
        shared = trial.with_name(trial.name + "-shared")
        count_kill(row, killing.run(killing.push_work, str(trial), str(ack), kill_after=delay))
        acked = [line[0] for line in killing.acked(ack)]
        mine = inspect(trial, row, k, acked=laptop_ids, uncommitted=0)
        theirs = inspect(shared, row, k, acked=laptop_ids if acked else (), commits=acked,
                         uncommitted=0)
        head = theirs.rev("HEAD").id
        row.notes["moved"] += head == new
        if head not in (old, new) or (acked and head != new):
            row.wrong += 1
            row.fail(k, f"shared main at {head[:7]} after a killed push (acked: {acked})")
        push(mine)  # what the user does next: push again
        theirs = LabelStore.open(shared)
        if theirs.labels(at="HEAD").to_dict() != mine.labels().to_dict() or refs_past(theirs):
            row.wrong += 1
            row.fail(k, "a second push did not give the shared store the laptop's labels")
        shutil.rmtree(trial)
        shutil.rmtree(shared)
    trials(row, n, span, 18, one, reach=1.6)
    row.notes["what"] = "push of two commits (11 labels) to a shared folder; then push again"
    return row


def run_pull(tmp: Path, n: int) -> Row:
    row = Row("pull")
    _, laptop = _pair(tmp, "pull", lambda s: None, lambda s: _more(s, "a"))
    shared_template = laptop.with_name("shared")
    old = LabelStore.reader(laptop).rev("HEAD").id
    new = LabelStore.reader(shared_template).rev("HEAD").id
    remote_labels = LabelStore.reader(shared_template).labels(at="HEAD").to_dict()
    shared_ids = list(LabelStore.reader(shared_template).events()["event_id"])
    laptop_ids = list(LabelStore.reader(laptop).events()["event_id"])
    span = aim(killing.pull_work, (None, str(tmp / "scratch-ack")), laptop, tmp, _copy_pair)
    row.notes["moved"] = 0

    def one(k, delay):
        trial, ack = _copy_pair(laptop, tmp / f"pull-{k}"), tmp / f"pull-{k}.ack"
        shared = trial.with_name(trial.name + "-shared")
        count_kill(row, killing.run(killing.pull_work, str(trial), str(ack), kill_after=delay))
        acked = [line[0] for line in killing.acked(ack)]
        acked = [c for c in acked if c != "None"]
        mine = inspect(trial, row, k, acked=laptop_ids + (shared_ids if acked else []),
                       commits=acked, uncommitted=0)
        head = mine.rev("HEAD").id
        row.notes["moved"] += head == new
        if head not in (old, new) or (acked and head != new):
            row.wrong += 1
            row.fail(k, f"laptop main at {head[:7]} after a killed pull (acked: {acked})")
        inspect(shared, row, k, acked=shared_ids, uncommitted=0)  # only read: still whole
        pull(mine)
        if mine.labels().to_dict() != remote_labels or mine.rev("HEAD").id != new:
            row.wrong += 1
            row.fail(k, "a second pull did not bring the shared labels")
        shutil.rmtree(trial)
        shutil.rmtree(shared)
    trials(row, n, span, 19, one, reach=1.4)
    row.notes["what"] = "pull of two commits (12 label events) from a shared folder; then pull again"
    return row


def run_clone(tmp: Path, n: int) -> Row:
    row = Row("clone")
    source = tmp / "clone-source"
    store = LabelStore.open(source, annotator="ann")
    for k in range(30):
        store.append(f"i{k}", str(k % 10))
    store.commit("thirty")
    store.branch("review")
    for k in range(5):  # uncommitted: the clone takes them as a commit of its own
        store.append(f"u{k}", "1")
    labels = LabelStore.open(source).labels().to_dict()
    ids = list(LabelStore.reader(source).events()["event_id"])
    before = {p: p.stat().st_mtime_ns for p in source.rglob("*")}
    span = _clone_span(source, tmp)
    row.notes.update(absent=0, whole=0, leftover_build_folders=0)

    def one(k, delay):
        target, ack = tmp / f"clones-{k}" / "copy", tmp / f"clone-{k}.ack"
        target.parent.mkdir()
        count_kill(row, killing.run(killing.clone_work, str(source), str(target), str(ack),
                                    kill_after=delay))
        acked = [line[0] for line in killing.acked(ack)]
        leftovers = [p for p in target.parent.iterdir() if p.name.startswith(".copy.clone-")]
        row.notes["leftover_build_folders"] += len(leftovers)
        if not target.exists():
            row.notes["absent"] += 1
            if acked:
                row.wrong += 1
                row.fail(k, "an acknowledged clone is not there")
        else:
            row.notes["whole"] += 1
            copy = inspect(target, row, k, acked=ids, commits=acked, uncommitted=0)
            if copy.labels().to_dict() != labels or copy.labels(at="HEAD").to_dict() != labels:
                row.wrong += 1
                row.fail(k, "a clone whose labels differ from its source's")
        shutil.rmtree(target.parent)
    trials(row, n, span, 20, one, reach=1.8)
    if {p: p.stat().st_mtime_ns for p in source.rglob("*")} != before:
        row.wrong += 1
        row.fail("all", "the clones' source changed (a clone must only read it)")
    row.notes["what"] = "clone of a 35-label store (5 uncommitted) into a new folder"
    return row


def _clone_span(source: Path, tmp: Path) -> float:
    """The median of three clones, timed here (killing.duration would replace the source with
    each copy: a clone's first argument is the store it reads, not the one it makes)."""
    times = []
    for k in range(3):
        target = tmp / f"measure-clone-{k}"
        start = time.perf_counter()
        clone(source, target)
        times.append(time.perf_counter() - start)
        shutil.rmtree(target)
    return sorted(times)[1]


# -- a teammate writing while we pull or push -----------------------------------------------------
def _shared_with_laptop(tmp: Path, name: str) -> tuple[Path, LabelStore]:
    shared = tmp / name / "shared"
    store = LabelStore.open(shared, annotator="ann")
    store.append("seed", "0")
    store.commit("seed")
    store.branch("side")
    return shared, clone(shared, tmp / name / "laptop", annotator="bob")


def _stop(proc, stop: Path) -> None:
    stop.touch()
    proc.join(60)
    if proc.exitcode != 0:
        raise RuntimeError(f"the teammate exited with {proc.exitcode}")


def _teammate_acks(ack: Path) -> tuple[list[str], list[str]]:
    lines = killing.acked(ack)
    return [v for kind, v in lines if kind == "event"], [v for kind, v in lines if kind == "commit"]


def run_pull_killed_racing(tmp: Path, n: int) -> Row:
    """One laptop, pulls killed one after another while a teammate labels, commits and
    compacts (retire_after=0) the shared store the whole time."""
    row = Row("pull killed, teammate compacting")
    shared, laptop = _shared_with_laptop(tmp, "pull-killed-race")
    ack, stop = tmp / "pull-killed-race" / "teammate.ack", tmp / "pull-killed-race" / "stop"
    proc = killing.start(killing.teammate_work, str(shared), str(ack), str(stop), "main", 4, 10, 0, PAUSE)
    try:
        times = []
        for _ in range(3):
            begin = time.perf_counter()
            pull(laptop)
            times.append(time.perf_counter() - begin)
        span = sorted(times)[1]
        laptop_acked: list[str] = []

        def one(k, delay):
            mine_ack = tmp / "pull-killed-race" / f"pull-{k}.ack"
            count_kill(row, killing.run(killing.pull_work, str(laptop.path), str(mine_ack),
                                        kill_after=delay))
            moved = [line[0] for line in killing.acked(mine_ack) if line[0] != "None"]
            mine = inspect(laptop.path, row, k, acked=laptop_acked, commits=moved, uncommitted=0)
            if moved and mine.rev("HEAD").id != moved[0] and moved[0] not in mine._ancestors(
                    mine.rev("HEAD").id):
                row.wrong += 1
                row.fail(k, f"acked fast-forward {moved[0][:7]} is not in laptop's history")
            head = mine.rev("HEAD")  # everything inside HEAD is now acknowledged here
            events = mine.events()
            laptop_acked[:] = list(events.loc[within(events, head.frontier), "event_id"])
        trials(row, n, span, 21, one, reach=1.6)
    finally:
        _stop(proc, stop)
    events, commits = _teammate_acks(ack)
    inspect(shared, row, "teammate", acked=events, commits=commits)
    row.notes["teammate_events"] = len(events)
    row.notes["what"] = ("pulls into one laptop, each killed at a random point, while a teammate "
                         f"labels ({PAUSE * 1e3:g} ms apart), commits every 4 and compacts every 10 "
                         "with retire_after=0")
    return row


def run_pull_race(tmp: Path, n: int) -> Row:
    row = Row("pull vs teammate compacting")
    shared, laptop = _shared_with_laptop(tmp, "pull-race")
    ack, stop = tmp / "pull-race" / "teammate.ack", tmp / "pull-race" / "stop"
    start = time.perf_counter()
    proc = killing.start(killing.teammate_work, str(shared), str(ack), str(stop), "main", 4, 10, 0, PAUSE)
    refused = moved = 0
    try:
        for k in range(n):
            row.trials += 1
            try:
                moved += pull(laptop)["fast_forward"] is not None
            except StoreError as err:  # a pull may refuse (moving nothing); count it
                refused += 1
                row.notes.setdefault("first_refusal", str(err))
            status = laptop.status()
            head = laptop.rev("HEAD")
            if status["uncommitted"] > 0 or laptop.labels(at="HEAD").size != head.n_labels:
                row.phantom += 1
                row.fail(k, f"phantom: uncommitted {status['uncommitted']} after a pull")
            for ref in ("HEAD", "origin/main"):
                if laptop.missing_events(laptop.rev(ref).frontier):
                    row.refs_past += 1
                    row.fail(k, f"{ref} names events the laptop lacks")
    finally:
        _stop(proc, stop)
    events, commits = _teammate_acks(ack)
    final = inspect(shared, row, "shared", acked=events, commits=commits)
    pull(laptop)
    mine = inspect(laptop.path, row, "laptop", uncommitted=0)
    at_head = final.labels(at="HEAD").to_dict()
    if mine.labels(at="origin/main").to_dict() != at_head or mine.labels().to_dict() != at_head:
        row.wrong += 1
        row.fail("final", "after a last pull the laptop's labels differ from the shared HEAD")
    row.seconds = round(time.perf_counter() - start, 1)
    row.notes.update(fast_forwards=moved, refused=refused, teammate_events=len(events),
                     teammate_commits=len(commits),
                     what="one process pulls in a loop (same handle, like a user's notebook) "
                          f"while a teammate labels ({PAUSE * 1e3:g} ms apart), relabels, commits "
                          "every 4 and compacts every "
                          "10 with retire_after=0; phantom and refs_past checked after each pull")
    return row


def run_push_compaction_race(tmp: Path, n: int) -> Row:
    row = Row("push vs teammate compacting")
    shared, laptop = _shared_with_laptop(tmp, "push-race")
    ack, stop = tmp / "push-race" / "teammate.ack", tmp / "push-race" / "stop"
    start = time.perf_counter()
    proc = killing.start(killing.teammate_work, str(shared), str(ack), str(stop), "side", 4, 10,
                         0, PAUSE)
    pushed_events: list[str] = []
    pushed: list[str] = []
    there = LabelStore.reader(shared)  # one handle on the shared folder, read as it changes
    row.notes.update(push_gave_up=0, read_gave_up=0)
    try:
        for k in range(n):
            row.trials += 1
            pushed_events.append(laptop.append(f"b{k}", str(k % 10)).event_id)
            if k % 2:
                laptop.append(f"b{k - 1}", "7", action="relabel")
            head = laptop.commit(f"bob {k}")
            try:
                push(laptop)
            except StoreError as err:  # moved nothing: the next round's push sends it too
                row.notes["push_gave_up"] += 1
                row.notes.setdefault("first_push_error", str(err))
                continue
            pushed.append(head.id)
            for _ in range(5):
                try:
                    main = there.rev("main")
                    past = there.missing_events(main.frontier)
                    seen = None if past else there.labels(at="main").to_dict()
                    break
                except StoreError as err:  # retire_after=0 outran the reader ten times
                    row.notes["read_gave_up"] += 1
                    row.notes.setdefault("first_read_error", str(err))
                    there = LabelStore.reader(shared)
            else:
                continue
            if main.id != head.id:
                row.wrong += 1
                row.fail(k, "the shared main is not where the push put it")
            if past:
                row.refs_past += 1
                row.fail(k, "shared main names events the shared folder lacks")
            elif seen != laptop.labels().to_dict():
                row.wrong += 1
                row.fail(k, "the shared main's labels differ from the pushed commit's")
    finally:
        _stop(proc, stop)
    events, commits = _teammate_acks(ack)
    final = inspect(shared, row, "shared", acked=events + pushed_events, commits=commits + pushed,
                    uncommitted=0)
    chain = final._ancestors(final.rev("main").id)
    lost = [c for c in pushed if c not in chain]
    row.lost += len(lost)
    inspect(laptop.path, row, "laptop", acked=pushed_events, uncommitted=0)
    row.seconds = round(time.perf_counter() - start, 1)
    row.notes.update(teammate_events=len(events), teammate_commits=len(commits),
                     what="one process labels, commits and pushes main in a loop while a "
                          f"teammate labels ({PAUSE * 1e3:g} ms apart) and commits on branch side "
                          "of the shared store and "
                          "compacts every 10 labels with retire_after=0")
    return row


def run_push_push_race(tmp: Path, rounds: int) -> Row:
    row = Row("push vs push (two clones)")
    shared = tmp / "push-push" / "shared"
    store = LabelStore.open(shared, annotator="ann")
    store.append("seed", "0")
    store.commit("seed")
    clones = [clone(shared, tmp / "push-push" / who, annotator=who) for who in ("p", "q")]
    start = time.perf_counter()
    acks = [tmp / "push-push" / f"{who}.ack" for who in ("p", "q")]
    procs = [killing.start(killing.pusher_work, str(c.path), str(a), rounds, who)
             for c, a, who in zip(clones, acks, ("p", "q"))]
    for proc in procs:
        proc.join(300)
        if proc.exitcode != 0:
            row.wrong += 1
            row.fail("pusher", f"a pusher exited with {proc.exitcode}")
    lines = [line for a in acks for line in killing.acked(a)]
    events = [v[1] for v in lines if v[0] == "event"]
    pushed = [v[1] for v in lines if v[0] == "pushed"]
    refused = sum(v[0] == "refused" for v in lines)
    row.trials = len(pushed) + refused
    final = inspect(shared, row, "shared", acked=events, commits=pushed, uncommitted=0)
    chain = final._ancestors(final.rev("main").id)
    lost = [c for c in pushed if c not in chain]
    if lost:
        row.lost += len(lost)
        row.fail("shared", f"{len(lost)} acknowledged pushes are not in the shared history")
    want = {f"{who}-{k}" for who in ("p", "q") for k in range(rounds)} | {"seed"}
    if set(final.labels(at="HEAD").index) != want:
        row.wrong += 1
        row.fail("shared", "the shared HEAD lacks labels one of the two pushed")
    for c in clones:
        inspect(c.path, row, c.path.name, uncommitted=0)
    row.seconds = round(time.perf_counter() - start, 1)
    row.notes.update(pushes=len(pushed), refused=refused,
                     what=f"two clones, {rounds} rounds each of label, commit, push to one "
                          "folder; a refused push is followed by pull, merge origin/main and "
                          "push; every acked push must be in the final history")
    return row


# -- the report ----------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


COLUMNS = ["op", "trials", "killed", "finished", "acked", "acked_commits", "lost", "duplicated",
           "phantom", "refs_past", "wrong", "seconds"]


def table(rows: list[Row]) -> str:
    widths = [max(len(c), *(len(str(getattr(r, c))) for r in rows)) for c in COLUMNS]
    line = lambda values: "  ".join(str(v).rjust(w) if i else str(v).ljust(w)  # noqa: E731
                                    for i, (v, w) in enumerate(zip(values, widths)))
    out = [line(COLUMNS), line("-" * w for w in widths)]
    out += [line(getattr(r, c) for c in COLUMNS) for r in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every trial count")
    parser.add_argument("--dir", default=None, help="where to build the stores (disk matters)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", nargs="*", default=None, help="run only these ops (names)")
    args = parser.parse_args()
    n = lambda base: max(3, round(base * args.scale))  # noqa: E731

    load_before = os.getloadavg()[0]
    begun = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="fault-run-", dir=args.dir))
    plan = [
        ("label", lambda: run_label(root, n(60))),
        ("undo", lambda: run_undo(root, n(50))),
        ("commit", lambda: run_commit(root, n(60))),
        ("merge", lambda: run_merge(root, n(60))),
        ("revert", lambda: run_fix(root, n(30), "revert")),
        ("restore", lambda: run_fix(root, n(30), "restore")),
        ("compaction", lambda: run_compact(root, n(60))),
        ("push", lambda: run_push(root, n(60))),
        ("pull", lambda: run_pull(root, n(60))),
        ("clone", lambda: run_clone(root, n(60))),
        ("pull-killed", lambda: run_pull_killed_racing(root, n(50))),
        ("pull-race", lambda: run_pull_race(root, n(500))),
        ("push-race", lambda: run_push_compaction_race(root, n(150))),
        ("push-push", lambda: run_push_push_race(root, n(30))),
    ]
    rows = []
    try:
        for name, step in plan:
            if args.only and name not in args.only:
                continue
            rows.append(step())
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - begun
    killed = [r for r in rows if r.killed or r.finished]
    totals = {c: sum(getattr(r, c) for r in rows) for c in COLUMNS[1:-1]}
    result = {
        "benchmark": "fault run: kill -9 at random points of the label store's writes, and "
                     "two processes racing on one shared folder",
        "date": now(),
        "machine": machine(
            cpu_model=cpu_model(), pyarrow=pa.__version__, pandas=pd.__version__, store_dir=str(root.parent),
            load_average_1m_before_after=[round(load_before, 2), round(os.getloadavg()[0], 2)]),
        "run_seconds": round(elapsed, 1),
        "scale": args.scale,
        "kills": sum(r.killed for r in killed),
        "kill_trials_finished_before_the_kill": sum(r.finished for r in killed),
        "totals": totals,
        "all_zero": all(totals[c] == 0 for c in ("lost", "duplicated", "phantom", "refs_past",
                                                   "wrong")),
        "columns": {
            "trials": "kill trials (or, in the two-process rows, pulls or pushes)",
            "killed": "kills that landed inside the operation",
            "finished": "trials whose operation ended before its kill was due",
            "acked": "acknowledged events checked after the trial, in each store checked "
                     "(appended by the operation or, for operations that must keep them, "
                     "already in the store)",
            "acked_commits": "acknowledged commits checked (made, merged, pushed, pulled)",
            "lost": "acknowledged events or commits missing after reopening",
            "duplicated": "events.event_id or (writer, seq) appearing twice",
            "phantom": "status() uncommitted differs from the expected count or from "
                       "diff('HEAD'), or labels(at='HEAD').size != rev('HEAD').n_labels",
            "refs_past": "refs (heads, remotes/*) naming events the store lacks",
            "wrong": "a killed multi-step write neither absent nor finished to the expected "
                     "labels, a clone not whole, an error while checking",
        },
        "rows": [{k: v for k, v in asdict(r).items()} for r in rows],
    }
    save(args.out.name, result, folder=args.out.parent)
    print()
    print(table(rows))
    print(f"\n{result['kills']} kills inside an operation, "
          f"{result['kill_trials_finished_before_the_kill']} trials finished first; "
          f"{elapsed:.0f} s; all zero: {result['all_zero']}")
    for r in rows:
        for failure in r.failures[:5]:
            print(f"  {r.op}: {failure}")


if __name__ == "__main__":
    main()
