"""A handle as a writer: the id and sequence numbers that name its part files, and its clock.

Each handle writes under a writer id of its own, so several notebooks (or processes) can
write one store at once, and numbers its events 0, 1, 2...: a frontier (the history's name for
a state) counts each writer's events by these numbers. The clock is the hybrid logical clock
of clock.py, kept per handle: `now` gives the next event's, and `saw_clock` moves it past
every event the handle reads or writes.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import pandas as pd

from workbench.store import clock


def new_writer(store) -> None:
    """A fresh writer id, numbering from 0 (at creation, and in a forked child)."""
    store._writer, store._pid, store._seq = uuid.uuid4().hex[:16], os.getpid(), 0


def now(store) -> tuple[datetime, datetime]:
    """(wall time, clock) for the next event. The clock is a hybrid logical clock: the
    wall time, but always after every event this handle has read or written, so an event
    sorts after everything its writer had seen (a relabel after the label it replaces)
    even when another machine's clock runs ahead. Pulls and merges carry it along: their
    events are read, so whatever is written next comes after them."""
    if os.getpid() != store._pid:  # a forked child must not reuse its parent's file names
        new_writer(store)
    wall = clock.wall_clock()
    store._clock = max(wall, store._clock + clock.TICK)
    return wall, store._clock


def saw_clock(store, latest) -> None:
    """Move the clock past an event read or written (a datetime or Timestamp; NaT skipped)."""
    if latest is not None and not pd.isna(latest):
        store._clock = max(store._clock, pd.Timestamp(latest).to_pydatetime())
