"""Time in the store: the wall clock people read, and the causal clock events are ordered by.

Every event carries both. `time` is this machine's wall clock: when it happened, for people.
`clock` is a hybrid logical clock: the wall time, except that it always moves past every event
its writer has read or written, so an event sorts after everything its writer had seen when it
wrote it (a relabel after the label it replaces, a merge's events after both sides) even when
another machine's clock runs an hour ahead. Wall clocks decide nothing else: merge bases are
found by ancestry and commits are listed in the order of their parents.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

TICK = timedelta(microseconds=1)  # the clock's resolution: the next event is at least this later


def wall_clock() -> datetime:
    """This machine's clock (tests skew it by patching this function)."""
    return datetime.now(timezone.utc)
