"""The rooms of `Session` (loop/session.py's docstring names them), each at its own seam:
what each one holds and decides, on a real store and a real pool. The behaviour as a user
sees it is tested through `Session` in the other files; these pin down the seams the
facade is wired from."""

import inspect

import numpy as np
import pandas as pd
import pytest

import workbench.loop.views as views
from workbench import Session, datasets, logistic_regression
from workbench.learn.queue import AUDIT, COLD_START
from workbench.loop.acting import Actions, item_and_role
from workbench.loop.held_out import held_out, held_out_split
from workbench.loop.item_state import MANUAL
from workbench.loop.rounds import HISTORY_COLUMNS
from workbench.loop.team import ago


@pytest.fixture(scope="module")
def pool():
    return datasets.digits().subset(np.arange(200))


@pytest.fixture
def session(pool, tmp_path):
    s = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False)
    yield s
    s.close()


def label_served(session, pool, n):
    for _ in range(n):
        q = session.next()
        session.label(q, pool.true_label(q.item_id))


def test_the_facade_forwards_with_the_rooms_names_docs_and_signatures():
    assert Session.label.__doc__ == Actions.label.__doc__
    assert list(inspect.signature(Session.undo).parameters) == ["self", "event_ids"]
    assert "Wilson" in Session.history.__doc__
    assert Session.widget.__name__ == "widget" and Session.widget.__doc__


def test_item_state_records_roles_and_refuses_a_role_never_served(session, pool):
    state = session.item_state
    item = pool.item_ids[0]
    assert state.role(item, None, "label") == MANUAL
    with pytest.raises(ValueError, match="never served by the queue"):
        state.role(item, "margin", "label")
    served = session.next()
    assert state.served_as(served.item_id) == served.strategy
    version = state.version
    session.label(served, pool.true_label(served.item_id))
    assert state.roles[served.item_id] == served.strategy and state.version == version + 1
    assert state.label_action(served.item_id) == "relabel"
    with pytest.raises(ValueError, match="is not one of the classes"):
        state.check_label("eleven", item)


def test_item_state_absorbs_another_writers_label(session, pool, tmp_path):
    other = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False, annotator="bo")
    item = pool.item_ids[5]
    other.label(item, pool.true_label(item))
    assert session.item_state.absorb([item]) == [item]
    assert session.item_state.absorb([item]) == []  # already known
    assert session.label_of(item) == pool.true_label(item)
    other.close()


def test_the_ranker_interleaves_audit_items_and_says_why(session):
    ranker = session.ranker
    assert ranker.in_reserve.sum() == len(ranker.reserve) > 0
    assert "diverse first pick" in ranker.reason(COLD_START, None, 0)
    assert "kept out of training" in ranker.reason(AUDIT, None, 0)
    roles = [q.strategy for q in session.peek(12)]
    assert AUDIT in roles and COLD_START in roles


def test_serving_counts_each_queue_and_serves_the_last_opened_first(session, pool):
    a, b = list(pool.item_ids[:3]), list(pool.item_ids[3:5])
    session.focus(a, role="spot-check")
    session.focus(b, role="map")
    assert [q["queue"] for q in session.queues] == ["map", "spot-check", session.strategy_name]
    assert [q.item_id for q in session.peek(5)] == b + a
    assert session.serving.is_done(b[0]) is False
    assert session.clear_queue("map") == ["map"]
    assert session.next().item_id == a[0]


def test_actions_keep_one_undo_entry_per_action(session, pool):
    ids = list(pool.item_ids[10:13])
    session.label_many({i: pool.true_label(i) for i in ids})
    session.label(pool.item_ids[20], pool.true_label(pool.item_ids[20]))
    assert [len(a) for a in session.actions.stack] == [3, 1]
    assert session.undo() == [pool.item_ids[20]]
    assert sorted(session.undo()) == sorted(ids)
    assert session.actions.stack == [] and session.undo() == []
    assert item_and_role(pool.item_ids[1], None) == (pool.item_ids[1], None)


def test_rounds_keep_the_history_and_the_model(session, pool):
    assert session.rounds.model is None and session.rounds.suggested_by() is None
    label_served(session, pool, 30)
    session.retrain()
    rounds = session.rounds
    assert rounds.model.round == 1 and len(rounds.rows) == 1
    assert set(HISTORY_COLUMNS) <= set(session.history.columns)
    assert rounds.pool_proba([0, 1]).shape == (2, len(session.classes))
    assert rounds.model_state()["rounds"] == 1


def test_a_failed_round_keeps_the_previous_model(session, pool):
    label_served(session, pool, 30)
    session.retrain()
    before = session.rounds.model

    def broken(*a, **k):
        raise RuntimeError("boom")

    session.rounds.fit = broken
    with pytest.raises(RuntimeError, match="boom"):
        session.retrain()
    assert session.rounds.model is before and session.rounds.running == 0
    assert session.model_state()["last_error"] == "RuntimeError: boom"


def test_resume_brings_back_the_rounds_from_the_store(session, pool, tmp_path):
    label_served(session, pool, 30)
    session.retrain()
    assert session.resume.state_name == "_session-" + session.annotator.replace(" ", "_") + ".json"
    order = [q.item_id for q in session.peek(5)]
    session.close()
    again = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False)
    again.wait_for_training(60)
    assert len(again.rounds.rows) == 1 and again.rounds.model is not None
    assert [q.item_id for q in again.peek(5)] == order
    again.close()


def test_held_out_is_the_test_split_or_the_audit_labels(pool, session):
    with pytest.raises(ValueError, match="test X has 3 rows but y has 2 labels"):
        held_out_split((np.zeros((3, 64)), [1, 2]), pool)
    assert held_out_split(None, pool) is None
    positions, truth, what = held_out(session, {pool.item_ids[0]: 3}, {pool.item_ids[0]})
    assert list(positions) == [0] and truth == ["3"] and "audit sample (1 items)" in what


def test_team_blames_in_words(session, pool):
    item = pool.item_ids[7]
    assert session.blame_text(item) is None
    session.label(item, pool.true_label(item))
    assert session.blame_text(item).startswith(f"labeled {pool.true_label(item)} by ")
    assert ago(pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=2)) == "2 hours ago"


def test_a_view_no_front_end_registered_says_what_to_import(session, monkeypatch):
    monkeypatch.setattr(views, "_VIEWS", {})
    with pytest.raises(RuntimeError, match="import workbench.ui"):
        session.widget()
