"""Limiting the threads of native libraries (BLAS, OpenMP) around a computation, cheaply.

`threadpoolctl.threadpool_limits` builds a new controller on every call, which walks every
shared library loaded in the process and asks each for its version: 5-70 ms a call on this
2-core machine, and a round limits threads several times (6 calls cost 0.37 s of a 2.5 s
round over 200,000 items, profiled). The controller here is built once and built again only
when modules were imported since (a new extension module may bring a new thread pool, such
as torch's OpenMP), so a call costs a tenth of a millisecond in a steady session.
"""

from __future__ import annotations

import sys
import threading

from threadpoolctl import ThreadpoolController

__all__ = ["limit_threads"]

_lock = threading.Lock()
_cached: tuple[int, ThreadpoolController] | None = None


def _controller() -> ThreadpoolController:
    global _cached
    with _lock:
        loaded = len(sys.modules)
        if _cached is None or _cached[0] != loaded:
            _cached = (loaded, ThreadpoolController())
        return _cached[1]


def limit_threads(limits: int, user_api: str | None = None):
    """A context manager: at most `limits` threads in the native pools of `user_api`
    ("blas", "openmp"; None: both) until it exits, as `threadpool_limits(limits, user_api)`."""
    return _controller().limit(limits=limits, user_api=user_api)
