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
    median of three runs, each on its own copy of the store when `copies` gives three paths
    to use as the first argument (the first run also warms the fork server)."""
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
    return sorted(times)[1]


def random_delays(n: int, span: float, seed: int) -> list[float]:
    """`n` kill points spread over [0, span]: stratified, so every part of the operation is hit."""
    rng = random.Random(seed)
    return [span * (k + rng.random()) / n for k in range(n)]


# -- the operations under test: each runs in the child, `started` set just before the write ----
def merge_work(started, path: str, ref: str) -> None:
    from workbench.store import LabelStore

    store = LabelStore.open(path)
    started.set()
    store.merge(ref)


def merge_killed_in_fixes(started, path: str, ref: str) -> None:
    """The merge, killed at the start of computing its events (after it recorded its state)."""
    import signal

    from workbench.store import LabelStore
    from workbench.store.history import History

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    History._fix_rows = die
    store = LabelStore.open(path)
    started.set()
    store.merge(ref)
