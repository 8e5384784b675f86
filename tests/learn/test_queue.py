"""The queue as arrays: the order, roles and scores it serves, and its audit slots."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.learn.queue import AUDIT, Queue, build_queue


def test_audit_slots_roles_and_scores():
    queue = build_queue([5, 6, 7, 8], [0.4, 0.3, 0.2, 0.1], "margin", audit=[1, 2, 3], audit_every=3)
    entries = list(queue.upcoming(lambda p: False))
    # every 3rd slot is the next audit item while ranked items follow; the rest come last
    assert entries == [(5, "margin", 0.4), (6, "margin", 0.3), (1, AUDIT, None),
                       (7, "margin", 0.2), (8, "margin", 0.1), (2, AUDIT, None), (3, AUDIT, None)]
    assert all(type(p) is int and type(s) in (float, type(None)) for p, _, s in entries)


def test_done_entries_at_the_front_are_passed_for_good_blocked_ones_come_back():
    queue = build_queue(np.arange(6), None, "cold-start")
    done, blocked = {0, 1, 3}, {2}
    assert [p for p, _, _ in queue.upcoming(done.__contains__, blocked.__contains__)] == [4, 5]
    assert queue.head == 2
    blocked.clear()
    assert next(queue.upcoming(done.__contains__))[0] == 2
    done.discard(0)  # an undo
    queue.rewind()
    assert next(queue.upcoming(done.__contains__)) == (0, "cold-start", None)


def test_a_queue_from_lists_and_its_errors():
    queue = Queue([3, 1], ["margin", AUDIT], [0.5, None])
    assert list(queue.upcoming(lambda p: False)) == [(3, "margin", 0.5), (1, AUDIT, None)]
    with pytest.raises(ValueError, match="at most once"):
        Queue([1, 1], ["a", "a"], [None, None])
    with pytest.raises(ValueError, match="queue of 2 positions got 1 roles and 2 scores"):
        Queue([1, 2], ["a"], [None, None])
    with pytest.raises(ValueError, match="audit items must not also be ranked"):
        build_queue([1, 2], None, "margin", audit=[2], audit_every=2)
