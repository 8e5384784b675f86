"""The watcher: a daemon thread that keeps an open session in step with its store.

Twice a second it calls `session.sync()`, which reads the events other notebooks and
processes wrote (so labels by a teammate show up within about a second, and their items
leave this session's queue) and keeps this session's claims alive.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)
_LIVE: weakref.WeakSet[Watcher] = weakref.WeakSet()


class Watcher:
    """Calls `poll` (a bound method, held weakly: a session nobody uses any more is not kept
    alive by its watcher, whose thread then ends) every `interval` seconds."""

    def __init__(self, poll: Callable[[], object], *, interval: float = 0.5):
        self._poll = weakref.WeakMethod(poll)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-watch", daemon=True)
        _LIVE.add(self)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            poll = self._poll()
            if poll is None:  # its session is gone
                return
            try:
                poll()
            except Exception:  # a bad read must not kill the watcher: try again next tick
                log.warning("workbench could not read the label store", exc_info=True)
            del poll

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


@atexit.register
def _stop_all() -> None:
    """Stop polling before the interpreter tears down the libraries a poll uses."""
    for watcher in list(_LIVE):
        watcher.close()
