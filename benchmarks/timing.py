"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeat: int = 3, warmup: bool = False) -> tuple[float, object]:
    """(median seconds of `repeat` calls of `fn`, its last result); `warmup` makes one
    untimed call first (imports, caches, allocator growth)."""
    if warmup:
        fn()
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out
