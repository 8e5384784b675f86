"""Queues opened on request compose (workbench/loop/focus.py), and every number on a review
card comes from one computation (issue 18, items 2, 4 and 5)."""

import re

import numpy as np
import pytest

from workbench import Session, datasets, logistic_regression
from workbench.loop.focus import Focuses


@pytest.fixture(scope="module")
def pool():
    return datasets.digits().subset(np.arange(300))


def test_focuses_stack_and_an_undo_brings_items_back():
    queues = Focuses()
    queues.open("review", ["a", "b", "c"])
    queues.open("spot-check", ["x", "b"])
    assert [f.role for f in queues.in_order()] == ["spot-check", "review"]
    queues.mark_done("b")  # done in both
    assert queues.get("review").pending() == ["a", "c"] and queues.get("spot-check").pending() == ["x"]
    queues.mark_done("x")
    assert [f.role for f in queues.in_order()] == ["review"]  # the spot check is finished
    queues.bring_back(["x"])
    assert [f.role for f in queues.in_order()] == ["spot-check", "review"]
    queues.open("review", ["c"])  # opened again: replaced, and in front
    assert [(f.role, f.pending()) for f in queues.in_order()] == [("review", ["c"]), ("spot-check", ["x"])]
    assert queues.clear("spot-check") == ["spot-check"] and queues.clear("nothing") == []
    assert queues.serving("x") is None and queues.serving("c").role == "review"


def flipped_session(pool, tmp_path, n=200, flips=12):
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False, audit_every=0)
    truth = {i: int(pool.true_label(i)) for i in pool.item_ids[:n]}
    flipped = set(pool.item_ids[:n:n // flips][:flips])
    session.label_many({i: (t + 3) % 10 if i in flipped else t for i, t in truth.items()})
    session.retrain()
    return session


CARD = re.compile(r"puts (\S+) at (\d+)% and the given (\S+) at (\d+)%")


def check_card(session, q):
    """The suggestion, its probability and the why-line agree, and the widget's later
    question ("what does the model think of this item now?") gets the same answer."""
    found = CARD.search(q.reason)
    assert found, q.reason
    assert str(q.suggestion) == found[1], (q.suggestion, q.reason)
    assert f"{q.confidence:.0%}" == f"{found[2]}%", (q.confidence, q.reason)
    assert found[3] == str(session.label_of(q.item_id))
    assert session.suggest(q.item_id) == (q.suggestion, q.confidence)


def test_every_review_card_tells_one_story(pool, tmp_path):
    session = flipped_session(pool, tmp_path)
    table = session.review()
    assert len(table) >= 3
    seen = 0
    while (q := session.next()) is not None and q.strategy == "review":
        check_card(session, q)
        seen += 1
        if seen == 2:  # a new model meanwhile: the review is ranked again, cards stay whole
            session.retrain()
        session.confirm(q.item_id)
    assert seen == len(table)
    session.close()


def test_a_spot_check_does_not_drop_the_open_review(pool, tmp_path):
    session = flipped_session(pool, tmp_path)
    review = list(session.review()["item_id"])
    assert len(review) >= 4
    session.confirm(session.next().item_id)
    batch = session.accept_suggestions(0.5, review=3)
    assert [q["queue"] for q in session.queues] == ["spot-check", "review", session.strategy_name]
    assert session.queues[0]["left"] == 3 and session.queues[1]["left"] == len(review) - 1
    for _ in range(3):  # the spot check first: it was asked for last
        q = session.next()
        assert q.strategy == "spot-check" and q.item_id in batch.sample
        session.label(q.item_id, q.suggestion)
    served = []
    while (q := session.next()) is not None and q.strategy == "review":  # then the review resumes
        served.append(q.item_id)
        session.confirm(q.item_id)
    assert sorted(served) == sorted(review[1:])
    assert [q["queue"] for q in session.queues] == [session.strategy_name]
    assert q.strategy not in ("review", "spot-check")  # then the strategy's queue
    session.close()


def test_a_queue_can_be_cleared_and_an_undo_brings_its_item_back(pool, tmp_path):
    session = flipped_session(pool, tmp_path)
    review = list(session.review()["item_id"])
    first = session.next()
    session.confirm(first.item_id)
    session.undo()
    assert session.next().item_id == first.item_id
    assert session.clear_queue("review") == ["review"]
    assert session.next().strategy != "review" and session.suggest(review[1]) != (None, None)
    assert [q["queue"] for q in session.queues] == [session.strategy_name]
    session.close()


def test_accepting_suggestions_commits_on_a_store_without_commits(pool, tmp_path):
    """One action, one commit, also on a new store: people's labels first, then the batch."""
    session = flipped_session(pool, tmp_path, flips=1)
    assert session.store.status()["head"] is None
    batch = session.accept_suggestions(0.5, review=2)
    for item in batch.sample:
        session.label(item, dict(zip(batch.proposed["item_id"], batch.proposed["suggestion"]))[item])
    batch.accept()
    log = session.store.log()
    assert len(log) == 2 and log["message"].iloc[0].startswith(f"Accept {len(batch) - 2} suggestions")
    assert session.store.status()["uncommitted"] == 0
    session.close()
