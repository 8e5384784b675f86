"""kill -9 at a random point of a write, in a real process: the harness of the fault tests
(tests/store/test_faults.py) and of benchmarks/fault_run.py.

Processes come from a fork server that has imported the store once, so a trial costs a fork
(tens of milliseconds), not a Python start with pandas and pyarrow (a second). The child runs
`work(path, ack, *args)`, which signals `started` just before the operation under test; the
parent waits for that, sleeps a random part of the operation's measured duration and sends
SIGKILL. What the child acknowledged (an event id returned by append, say) is written to the
`ack` file with one os.write per line, which a kill cannot tear or lose: the kernel has it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
from pathlib import Path

_context = None


def context():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["workbench.store", "workbench.store.sync", "killing"])
    return _context


def ack(path: str | os.PathLike, *values) -> None:
    """Record values the operation acknowledged (one line, one write: never torn by a kill)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (" ".join(map(str, values)) + "\n").encode())
    finally:
        os.close(fd)


def acked(path: str | os.PathLike) -> list[list[str]]:
    try:
        return [line.split() for line in Path(path).read_text().splitlines() if line]
    except FileNotFoundError:
        return []


def _child(work, started, args):
    work(started, *args)


def run(work, *args, kill_after: float | None = None, timeout: float = 60) -> bool:
    """Run `work(started, *args)` in a forked process; SIGKILL it `kill_after` seconds after it
    sets `started` (None: let it finish). Returns True when it was killed, False when it ended
    first. A child that fails raises here."""
    ctx = context()
    started = ctx.Event()
    proc = ctx.Process(target=_child, args=(work, started, args))
    proc.start()
    try:
        if kill_after is not None and started.wait(timeout):
            time.sleep(kill_after)
            if proc.is_alive():
                proc.kill()
        proc.join(timeout)
        if proc.is_alive():
            raise TimeoutError(f"{work.__name__} still running after {timeout} s")
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    if proc.exitcode == -9:
        return True
    if proc.exitcode != 0:
        raise RuntimeError(f"{work.__name__}{args} exited with {proc.exitcode}")
    return False


def duration(work, *args, copies: list | None = None) -> float:
    """How long `work` takes from `started` to its end, unkilled (to aim the kills): the
    fastest of three runs, each on its own copy of the store when `copies` gives three paths
    to use as the first argument (the first run also warms the fork server). The fastest,
    not the median: under pytest-xdist the other worker's load comes and goes, and a span
    measured while it was busy put half the kills after merges that then ran faster (47 of
    100 inside, seen in a full run)."""
    times = []
    for k in range(3):
        run_args = args if copies is None else (copies[k], *args[1:])
        ctx = context()
        started = ctx.Event()
        proc = ctx.Process(target=_child, args=(work, started, run_args))
        proc.start()
        started.wait(60)
        begin = time.perf_counter()
        proc.join(60)
        times.append(time.perf_counter() - begin)
    return min(times)


def random_delays(n: int, span: float, seed: int) -> list[float]:
    """`n` kill points spread over [0, span]: stratified, so every part of the operation is hit."""
    rng = random.Random(seed)
    return [span * (k + rng.random()) / n for k in range(n)]


def diverged(path) -> dict:
    """Two branches of one store that a plain fold would merge wrongly: main relabels x to 2;
    branch b relabels x to 3 and back to 1 and adds y. Returns the three-way result of
    merging b into main (x=2: only main changed x in the end; a fold of both sides gives x=1)."""
    from workbench.store import LabelStore

    main = LabelStore.open(path, annotator="ann")
    main.append("x", "1")
    main.append("z", "7")
    main.commit("start")
    main.branch("b")
    main.append("x", "2", action="relabel")
    main.commit("x is 2")
    side = LabelStore.open(path, annotator="bob", branch="b")
    side.append("x", "3", action="relabel")
    side.append("x", "1", action="relabel")
    side.append("y", "5")
    side.commit("bob")
    return {"x": "2", "y": "5", "z": "7"}


def diverged_sets(path) -> dict:
    """The same for a multi-label store (its metadata says so): main adds "big" to x's set and
    labels w; branch b swaps x's "1" for "7" and adds y. Merging b into main takes x class by
    class, a set neither side wrote: ["7", "big", "odd"]."""
    from workbench.store import LabelStore
    from workbench.store.meta import read_meta, write_meta

    main = LabelStore.open(path, annotator="ann")
    write_meta(path, {**read_meta(path), "task": "multi_label",
                      "classes": ["1", "5", "7", "big", "odd"]})
    main.append("x", '["1", "odd"]')
    main.append("z", '["5", "big", "odd"]')
    main.commit("start")
    main.branch("b")
    main.append("x", '["1", "big", "odd"]', action="relabel")
    main.append("w", '["5"]')
    main.commit("x is big")
    side = LabelStore.open(path, annotator="bob", branch="b")
    side.append("x", '["7", "odd"]', action="relabel")
    side.append("y", '["5", "big"]')
    side.commit("bob")
    return {"w": '["5"]', "x": '["7", "big", "odd"]', "y": '["5", "big"]', "z": '["5", "big", "odd"]'}


def diverged_boxes(path) -> dict:
    """The same for a boxes store: on main x's digit "3" becomes a "5"; on branch b someone
    draws the "7" x was missing and moves its "1". Merging b into main takes both, box by box:
    a box list neither side wrote."""
    from workbench.store import LabelStore
    from workbench.store.meta import read_meta, write_meta

    def boxes(*rows):
        return json.dumps({"v": 1, "boxes": [list(r) for r in rows]})

    main = LabelStore.open(path, annotator="ann")
    write_meta(path, {**read_meta(path), "task": "boxes", "classes": ["1", "3", "5", "7"]})
    main.append("x", boxes([10, 10, 20, 24, "3"], [60, 70, 16, 22, "1"]))
    main.append("z", boxes([5, 5, 10, 10, "7"]))
    main.commit("start")
    main.branch("b")
    main.append("x", boxes([10, 10, 20, 24, "5"], [60, 70, 16, 22, "1"]), action="relabel")
    main.commit("x's first digit is a 5")
    side = LabelStore.open(path, annotator="bob", branch="b")
    side.append("x", boxes([10, 10, 20, 24, "3"], [90, 8, 18, 20, "7"], [62, 70, 16, 22, "1"]),
                action="relabel")
    side.commit("bob: the missing 7, the 1 moved")
    return {"x": boxes([90, 8, 18, 20, "7"], [10, 10, 20, 24, "5"], [62, 70, 16, 22, "1"]),
            "z": boxes([5, 5, 10, 10, "7"])}


# -- the operations under test: each runs in the child, `started` set just before the write ----
def merge_work(started, path: str, ref: str) -> None:
    from workbench.store import LabelStore

    store = LabelStore.open(path)
    started.set()
    store.merge(ref)


def merge_killed_in_fixes(started, path: str, ref: str) -> None:
    """The merge, killed at the start of computing its events (after it recorded its state)."""
    import signal

    from workbench.store import LabelStore, fixes

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    fixes.fix_rows = die
    store = LabelStore.open(path)
    started.set()
    store.merge(ref)


# -- the operations of benchmarks/fault_run.py: each acks what it was told was done ----------
def label_work(started, path: str, ack_path: str, n: int, prefix: str) -> None:
    """Label n new items one append at a time, acking each event id as append returns."""
    from workbench.store import LabelStore

    store = LabelStore.open(path, annotator="labeler")
    started.set()
    for k in range(n):
        ack(ack_path, store.append(f"{prefix}{k}", str(k % 10)).event_id)


def undo_work(started, path: str, ack_path: str, targets: list[str]) -> None:
    """Undo each of these events in turn, acking each undo's event id."""
    from workbench.store import LabelStore

    store = LabelStore.open(path, annotator="undoer")
    started.set()
    for target in targets:
        ack(ack_path, store.undo(target).event_id)


def commit_work(started, path: str, ack_path: str, n: int, prefix: str) -> None:
    """n times: label a new item, then commit it; acks 'event <id>' and 'commit <id>'."""
    from workbench.store import LabelStore

    store = LabelStore.open(path, annotator="committer")
    started.set()
    for k in range(n):
        ack(ack_path, "event", store.append(f"{prefix}{k}", str(k % 10)).event_id)
        ack(ack_path, "commit", store.commit(f"{prefix} {k}").id)


def merge_acked_work(started, path: str, ref: str, ack_path: str) -> None:
    """merge_work, acking the merge commit's id once merge() returns."""
    from workbench.store import LabelStore

    store = LabelStore.open(path)
    started.set()
    result = store.merge(ref)
    ack(ack_path, result.commit.id if result.commit is not None else "conflicts")


def revert_work(started, path: str, ref: str, ack_path: str) -> None:
    from workbench.store import LabelStore

    store = LabelStore.open(path)
    started.set()
    ack(ack_path, store.revert(ref).id)


def restore_work(started, path: str, ref: str, ack_path: str) -> None:
    from workbench.store import LabelStore

    store = LabelStore.open(path)
    started.set()
    ack(ack_path, store.restore(ref).id)


def compact_work(started, path: str, ack_path: str, retire_after: float | None) -> None:
    """compact() (retire_after=0: parts deleted at once; None: the default grace period)."""
    from workbench.store import LabelStore

    store = LabelStore.open(path)
    started.set()
    ack(ack_path, store.compact(retire_after=retire_after))


def push_work(started, path: str, ack_path: str) -> None:
    """push() the store's branch to its origin, acking the commit the remote's branch got."""
    from workbench.store import LabelStore
    from workbench.store.sync import push

    store = LabelStore.open(path)
    started.set()
    ack(ack_path, push(store)["to"])


def pull_work(started, path: str, ack_path: str) -> None:
    """pull() from origin, acking the commit this branch fast-forwarded to (or None)."""
    from workbench.store import LabelStore
    from workbench.store.sync import pull

    store = LabelStore.open(path)
    started.set()
    ack(ack_path, pull(store)["fast_forward"])


def clone_work(started, source: str, target: str, ack_path: str) -> None:
    """clone() source to target, acking the clone's head once clone() returns."""
    from workbench.store.sync import clone

    started.set()
    ack(ack_path, clone(source, target).rev("HEAD").id)


# -- two processes at once: a teammate working in a loop while the parent pulls or pushes ----
def start(work, *args, timeout: float = 60):
    """Start `work(started, *args)` in a forked process and return it once it set `started`
    (the caller stops it, e.g. with a stop file, and joins it)."""
    ctx = context()
    started = ctx.Event()
    proc = ctx.Process(target=_child, args=(work, started, args))
    proc.start()
    if not started.wait(timeout):
        proc.kill()
        proc.join()
        raise TimeoutError(f"{work.__name__} did not start within {timeout} s")
    return proc


def teammate_work(started, path: str, ack_path: str, stop_path: str, branch: str,
                  commit_every: int, compact_every: int, retire_after: float | None,
                  pause: float = 0.0) -> None:
    """Label (and now and then relabel) on `branch` of the store at `path` until `stop_path`
    exists, committing every `commit_every` labels and compacting every `compact_every`
    (retire_after=0: compacted parts vanish at once, the harshest case for a reader);
    `pause` seconds between labels keeps the store from growing too big for a short run."""
    from workbench.store import LabelStore

    store = LabelStore.open(path, annotator=f"teammate-{branch}", branch=branch)
    started.set()
    k = 0
    while not os.path.exists(stop_path):
        ack(ack_path, "event", store.append(f"{branch}-{k}", str(k % 10)).event_id)
        if k % 3 == 2:
            store.append(f"{branch}-{k - 1}", str((k + 1) % 10), action="relabel")
        if k % commit_every == commit_every - 1:
            ack(ack_path, "commit", store.commit(f"{branch} {k}").id)
        if k % compact_every == compact_every - 1:
            store.compact(retire_after=retire_after)
        k += 1
        time.sleep(pause)


def pusher_work(started, path: str, ack_path: str, rounds: int, prefix: str) -> None:
    """One of two clones pushing to one shared folder: each round labels an item, commits
    and pushes; a refused push (the other got there first) is followed by pull, merge of
    origin/main and push again. Acks 'pushed <head>' and 'refused'."""
    from workbench.store import LabelStore, StoreError
    from workbench.store.sync import pull, push

    store = LabelStore.open(path, annotator=prefix)
    started.set()
    for k in range(rounds):
        ack(ack_path, "event", store.append(f"{prefix}-{k}", str(k % 10)).event_id)
        store.commit(f"{prefix} {k}")
        while True:
            try:
                ack(ack_path, "pushed", push(store)["to"])
                break
            except StoreError as err:
                if "lacks" not in str(err):
                    raise
                ack(ack_path, "refused")
                pull(store)
                if store.rev("origin/main").id not in store._ancestors(store.rev("HEAD").id):
                    store.merge("origin/main")
