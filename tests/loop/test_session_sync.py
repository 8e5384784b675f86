"""A session follows its branch: labels that arrive by a change of the branch's head (a
merge, a pull, a restore) reach it like any new label, in the same process or another."""

from __future__ import annotations

import pytest

from workbench import Session, datasets, logistic_regression
from workbench.store import LabelStore
from workbench.store.sync import clone, pull


@pytest.fixture(scope="module")
def pool():
    return datasets.digits().train_test_split(0.3, seed=0)[0]


def test_a_merge_by_another_handle_reaches_the_open_session(pool, tmp_path):
    path = tmp_path / "labels"
    session = Session(pool, path, learner=logistic_regression(), annotator="me")
    for item in session.peek(6):
        session.label(item.item_id, pool.true_label(item.item_id))
    store = LabelStore.open(path, annotator="me")
    store.commit("mine")
    store.branch("bob")
    bob = LabelStore.open(path, annotator="bob", branch="bob")
    served = {i.item_id for i in session.peek(40)}
    bobs = [i for i in pool.item_ids if i not in session.labels and i in served][:10]
    for item in bobs:
        bob.append(item, str(pool.true_label(item)))
    bob.commit("bob's ten")
    assert session.sync() == []  # bob's labels are on his branch, not the session's
    assert store.merge("bob").fast_forward
    assert len(store.labels()) == 16
    assert set(session.sync()) == set(bobs)  # what the widget's watcher calls
    assert len(session.labels) == 16  # the session sees the merge...
    assert not {i.item_id for i in session.peek(40)} & set(bobs)  # ...and serves bob's items no more
    first = bobs[0]
    assert session.store.labels()[first] == str(pool.true_label(first))


def test_a_pull_and_a_restore_reach_the_open_session(pool, tmp_path):
    shared = LabelStore.open(tmp_path / "shared", annotator="ann")
    ids = list(pool.item_ids[:8])
    for item in ids[:4]:
        shared.append(item, str(pool.true_label(item)))
    start = shared.commit("start")
    clone(tmp_path / "shared", tmp_path / "laptop")
    session = Session(pool, tmp_path / "laptop", learner=logistic_regression(), annotator="bob")
    assert len(session.labels) == 4
    for item in ids[4:]:
        shared.append(item, str(pool.true_label(item)))
    shared.commit("four more")
    pull(LabelStore.open(tmp_path / "laptop"))
    assert set(session.sync()) == set(ids[4:])
    assert set(session.labels) == set(ids)
    LabelStore.open(tmp_path / "laptop").restore(start)
    assert set(session.sync()) == set(ids[4:])
    assert set(session.labels) == set(ids[:4])
