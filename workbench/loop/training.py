"""The background training worker: one round at a time, requests coalesced.

A round is whatever the session hands in (fit a fresh learner, score the pool, re-rank);
this module only decides when rounds run. Asking for a round while one runs schedules at
most one more, and only if the labels changed since the running round took its snapshot:
a second click on Retrain never trains twice on the same labels. A round that fails
reports its error and leaves the worker ready for the next request; so does one that is
interrupted (a KeyboardInterrupt raised inside it): the previous model is kept.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager

log = logging.getLogger(__name__)
INTERRUPTED = "retrain interrupted; the previous model is kept"
# The niceness of the training thread (and of the threads it starts, which inherit it): on
# 2 cores a round's two spreading threads and the kernel's thread took turns, and next()
# waited for its turn (p99 6 ms at 100,000 items, benchmarks/next_latency.py); a nicer
# round yields the core at once.
BACKGROUND_NICENESS = 10
# The interpreter's switch interval while a round trains in the background: a thread that
# wants the interpreter lock waits up to this long for the running one to let go, and a
# round's Python (the head's fit, the queue) held it for the default 5 ms at a time, which
# was next()'s p95 at 20,000 items. Put back when no round runs.
SWITCH_INTERVAL_S = 0.0005
_switching = threading.Lock()
_rounds_running = 0
_interval_before = 0.005


class RetrainInterrupted(KeyboardInterrupt):
    """What a foreground `session.retrain()` raises when the kernel is interrupted while it
    trains: still a KeyboardInterrupt (the cell stops, a loop around it too), shown in a
    notebook as its one line instead of the traceback through the learner's code."""

    def __init__(self, message: str = INTERRUPTED):
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of a traceback
        return [f"KeyboardInterrupt: {self}"]


class Trainer:
    """Runs `run_round()` in a background thread; `version()` counts label changes."""

    def __init__(self, run_round: Callable[[], int], version: Callable[[], int]):
        self._run_round = run_round  # returns the label version it trained on
        self._version = version
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._running: Future | None = None
        self._pending: Future | None = None  # the one extra round asked for meanwhile
        self._closed = False

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running is not None

    def request(self) -> Future:
        """Start a round, or schedule one after the running round; returns its Future.

        The Future resolves to None when the round has finished, failed (the session
        records the error) or turned out unnecessary (no new labels since the last one).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("this session is closed; open a new Session to train")
            if self._running is None:
                self._running = self._submit()
                return self._running
            if self._pending is None:
                self._pending = Future()
            return self._pending

    def first(self, run_round: Callable[[], int | None]) -> Future:
        """Run `run_round` instead of the usual round, now, while nothing else runs (a
        reopened session rebuilding its model); requests made meanwhile wait for it."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this session is closed; open a new Session to train")
            if self._running is not None:
                raise RuntimeError("a training round is running already")
            self._running = self._submit(run_round)
            return self._running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no round runs or waits; False if `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                futures = [f for f in (self._running, self._pending) if f is not None]
            if not futures:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                futures[0].result(timeout=left)
            except FutureTimeout:
                return False
            except Exception:  # noqa: S110 - a failed round is recorded by the session
                pass

    def close(self, *, wait: bool = True) -> None:
        """Stop taking requests; with `wait`, also wait for the running round to finish."""
        with self._lock:
            self._closed = True
            executor = self._executor
        if executor is not None:
            executor.shutdown(wait=wait)

    def _submit(self, run_round: Callable[[], int | None] | None = None) -> Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-train",
                                                initializer=run_nicely)
        return self._executor.submit(self._round, run_round or self._run_round)

    def _round(self, run_round: Callable[[], int | None]) -> None:
        trained = None
        try:
            with _responsive_interpreter():
                trained = run_round()
        except KeyboardInterrupt:  # recorded by the session too; one line, no traceback
            log.warning(INTERRUPTED)
        except Exception:  # the session has recorded it; the worker must stay usable
            log.debug("training round failed", exc_info=True)
        finally:
            self._finish(trained)

    def _finish(self, trained: int | None) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            self._running = None
            if pending is None:
                return
            if self._closed or (trained is not None and self._version() == trained):
                pending.set_result(None)  # nothing new to learn from: drop the duplicate
                return
            self._running = self._submit()
            self._running.add_done_callback(lambda f: pending.set_result(None))


def run_nicely() -> None:
    """Lower this thread's scheduling priority (Linux, where a thread has its own niceness);
    elsewhere, or where it is not allowed, rounds run at the kernel's priority as before."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), BACKGROUND_NICENESS))
    except OSError:
        log.debug("could not lower the training thread's priority", exc_info=True)


@contextmanager
def _responsive_interpreter():
    """SWITCH_INTERVAL_S while any session's round runs in the background, the interval
    found before the first of them once the last one ends."""
    global _rounds_running, _interval_before
    with _switching:
        if _rounds_running == 0:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_interval_before, SWITCH_INTERVAL_S))
        _rounds_running += 1
    try:
        yield
    finally:
        with _switching:
            _rounds_running -= 1
            if _rounds_running == 0:
                sys.setswitchinterval(_interval_before)
