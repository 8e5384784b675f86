"""Opening a store never blocks on training; an interrupted retrain keeps the previous model
(issue 18, items 8 and 9)."""

import logging
import threading
import time
import traceback

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from workbench import Session, TorchClassifier, datasets
from workbench.loop.training import INTERRUPTED, RetrainInterrupted

calls = {"n": 0, "interrupt_on": None, "sleep": 0.0, "threads": []}


class Recording(LogisticRegression):
    """A learner the store keeps no arrays of (not a plain LogisticRegression), whose fit
    records its thread, may sleep, and raises KeyboardInterrupt on a chosen call."""

    def fit(self, X, y):
        calls["n"] += 1
        calls["threads"].append(threading.current_thread())
        if calls["n"] == calls["interrupt_on"]:
            raise KeyboardInterrupt  # as the kernel's stop button does, deep in the learner
        time.sleep(calls["sleep"])
        return super().fit(X, y)


@pytest.fixture(autouse=True)
def reset_calls():
    calls.update(n=0, interrupt_on=None, sleep=0.0, threads=[])


@pytest.fixture(scope="module")
def split():
    train, test = datasets.digits().train_test_split(0.3, seed=0)
    return train.subset(np.arange(400)), test


def make(split, tmp_path, **kw):
    train, test = split
    kw.setdefault("learner", Recording(max_iter=200))
    return Session(train, tmp_path / "labels", test=(test.X, test.y), watch=False, **kw)


def label_truth(session, n):
    for item in session.peek(n):
        session.label(item.item_id, session.pool.true_label(item.item_id))


def small_torch():
    return TorchClassifier(hidden=16, min_steps=20, max_epochs=5, n_members=2, device="cpu")


# -- item 8: opening a store ------------------------------------------------------------------
def test_a_reopened_torch_session_restores_its_model_without_training(split, tmp_path, monkeypatch):
    session = make(split, tmp_path, learner=small_torch(), strategy="margin")
    label_truth(session, 20)
    session.retrain()
    positions = np.arange(len(session.pool))
    before = session.pool_proba(positions).copy()
    before_query = session.pool_proba(positions, labels_only=True).copy()
    expected = [i.item_id for i in session.peek(10)]
    session.close()

    def no_training(*args, **kw):
        raise AssertionError("reopening the store trained the model again")

    monkeypatch.setattr(TorchClassifier, "fit", no_training)
    again = make(split, tmp_path, learner=small_torch(), strategy="margin")
    assert not again.model_state()["training"] and again.history.shape[0] == 1
    assert np.array_equal(again.pool_proba(positions), before)
    assert np.array_equal(again.pool_proba(positions, labels_only=True), before_query)
    assert [i.item_id for i in again.peek(10)] == expected
    again.close()


def test_another_learners_settings_are_not_restored_but_trained_in_the_background(split, tmp_path):
    session = make(split, tmp_path, learner=small_torch())
    label_truth(session, 20)
    session.retrain()
    session.close()
    other = small_torch().set_params(hidden=8)
    again = make(split, tmp_path, learner=other)
    assert again.wait_for_training(timeout=30)
    assert again.model is not None and again.model.learner.hidden == 8


def test_opening_a_store_returns_at_once_and_trains_in_the_background(split, tmp_path):
    session = make(split, tmp_path)
    label_truth(session, 20)
    session.retrain()
    expected = [i.item_id for i in session.peek(10)]
    session.close()

    calls.update(threads=[], sleep=1.0)
    events = []
    started = time.perf_counter()
    again = make(split, tmp_path)
    again.subscribe(events.append)
    assert time.perf_counter() - started < 0.9  # the fit alone sleeps a second
    assert again.model is None and again.model_state()["training"]
    assert again.wait_for_training(timeout=30)
    assert calls["threads"] and threading.main_thread() not in calls["threads"]
    assert again.model is not None and not again.model_state()["training"]
    assert again.history.shape[0] == 1 and "retrain_finished" in events
    assert [i.item_id for i in again.peek(10)] == expected


def test_a_retrain_while_the_model_is_rebuilt_wins(split, tmp_path):
    session = make(split, tmp_path)
    label_truth(session, 20)
    session.retrain()
    session.close()
    calls["sleep"] = 0.3
    again = make(split, tmp_path)
    label_truth(again, 3)
    again.retrain()  # waits for the rebuild, then trains on all the labels
    assert again.wait_for_training(timeout=30)
    assert again.history["round"].tolist() == [1, 2] and again.model.info["round"] == 2


# -- item 9: an interrupted retrain -----------------------------------------------------------
def test_an_interrupted_retrain_in_the_cell_keeps_the_previous_model(split, tmp_path):
    session = make(split, tmp_path)
    label_truth(session, 20)
    session.retrain()
    model, queue = session.model, [i.item_id for i in session.peek(3)]
    label_truth(session, 2)
    calls["interrupt_on"] = calls["n"] + 1
    with pytest.raises(KeyboardInterrupt) as raised:  # the cell stops...
        session.retrain()
    error = raised.value
    assert isinstance(error, RetrainInterrupted) and str(error) == INTERRUPTED
    # ...with one line in a notebook, and a traceback that stops at retrain() elsewhere
    assert error._render_traceback_() == [f"KeyboardInterrupt: {INTERRUPTED}"]
    assert error.__suppress_context__ and error.__cause__ is None
    frames = [f.name for f in traceback.extract_tb(error.__traceback__)]
    assert "fit" not in frames and "_train_round" not in frames
    assert session.model is model and session.history.shape[0] == 1
    assert session.model_state()["training"] is False
    assert session.model_state()["last_error"] == INTERRUPTED
    # the session goes on: label, next, retrain
    assert session.peek(1)[0].item_id == queue[2]  # the same queue, less the two labeled
    label_truth(session, 2)
    assert session.next() is not None
    session.retrain()
    assert session.history["round"].tolist() == [1, 2]
    assert session.model_state()["last_error"] is None


def test_an_interrupted_torch_retrain_says_one_line(split, tmp_path, monkeypatch):
    session = make(split, tmp_path, learner=small_torch())
    label_truth(session, 20)
    session.retrain()
    model = session.model

    def interrupted(self, *args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(TorchClassifier, "_fit_network", interrupted)
    with pytest.raises(RetrainInterrupted, match=INTERRUPTED) as raised:
        session.retrain()
    assert all("learners.py" not in f.filename and "torch" not in f.filename
               for f in traceback.extract_tb(raised.value.__traceback__))
    assert session.model is model and not session.model_state()["training"]
    monkeypatch.undo()
    session.retrain()
    assert session.history.shape[0] == 2


def test_an_interrupted_background_retrain_keeps_the_previous_model(split, tmp_path, caplog):
    session = make(split, tmp_path)
    events = []
    session.subscribe(events.append)
    label_truth(session, 20)
    session.retrain()
    model = session.model
    label_truth(session, 2)
    calls["interrupt_on"] = calls["n"] + 1
    with caplog.at_level(logging.WARNING, logger="workbench.loop.training"):
        assert session.retrain(background=True).result(timeout=30) is None
        assert session.wait_for_training(timeout=30)  # no KeyboardInterrupt comes back here
    assert [r.getMessage() for r in caplog.records] == [INTERRUPTED]
    assert "retrain_failed" in events
    assert session.model is model and session.history.shape[0] == 1
    state = session.model_state()
    assert state["training"] is False and state["last_error"] == INTERRUPTED
    label_truth(session, 2)
    session.retrain(background=True)
    assert session.wait_for_training(timeout=30)
    assert session.history["round"].tolist() == [1, 2]


def test_an_interrupted_rebuild_leaves_a_usable_session(split, tmp_path, caplog):
    session = make(split, tmp_path)
    label_truth(session, 20)
    session.retrain()
    session.close()
    calls["interrupt_on"] = calls["n"] + 1
    with caplog.at_level(logging.WARNING, logger="workbench.loop.session"):
        again = make(split, tmp_path)
        assert again.wait_for_training(timeout=30)
    assert any("interrupted" in r.getMessage() for r in caplog.records)
    assert again.model is None and not again.model_state()["training"]
    label_truth(again, 2)
    again.retrain()
    assert again.history["round"].tolist() == [1, 2]


def test_a_background_round_runs_nicely_and_puts_the_interpreter_back():
    import os
    import sys

    from workbench.loop.training import BACKGROUND_NICENESS, SWITCH_INTERVAL_S, Trainer

    seen = {}

    def round_():
        tid = threading.get_native_id()
        seen["interval"] = sys.getswitchinterval()
        if sys.platform.startswith("linux"):
            seen["niceness"] = os.getpriority(os.PRIO_PROCESS, tid)
            child = threading.Thread(target=lambda: seen.__setitem__(
                "child", os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
            child.start()
            child.join()
        return 0

    before = sys.getswitchinterval()
    trainer = Trainer(round_, lambda: 0)
    trainer.request()
    assert trainer.wait(10)
    trainer.close()
    assert seen["interval"] == min(before, SWITCH_INTERVAL_S) and sys.getswitchinterval() == before
    if sys.platform.startswith("linux"):  # the spreading threads a round starts inherit it
        assert seen["niceness"] >= BACKGROUND_NICENESS and seen["child"] == seen["niceness"]
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < BACKGROUND_NICENESS
