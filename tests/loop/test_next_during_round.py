"""Serving never waits for a training round: next() and label() return while a round trains
in the background, and the round's model and queue land afterwards. The round here is held
on an Event inside its learner's fit, so a next() that waited for it would hang (the test
fails on a timeout instead): a behaviour test, not a timing one (timings:
benchmarks/next_latency.py)."""

from __future__ import annotations

import threading

import numpy as np
from sklearn.linear_model import LogisticRegression

from workbench import Pool, Session


def blobs(n=600, d=16, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = rng.normal(0, 3, (3, d))
    return Pool.from_arrays((centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y)


def label_next(session, n):
    for _ in range(n):
        item = session.next()
        session.label(item, session.pool.true_label(item.item_id))


def run_within(seconds, work):
    """Run `work` in a thread; whether it finished within `seconds` (a hang fails the test
    instead of hanging it), and what it raised."""
    raised = []

    def target():
        try:
            work()
        except BaseException as e:  # reported to the test below
            raised.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), raised


def test_next_and_label_return_while_a_round_is_held_in_its_fit(tmp_path):
    entered, release = threading.Event(), threading.Event()

    class HeldLogistic(LogisticRegression):
        """A real classifier whose fit waits until the test lets it go on."""

        def fit(self, X, y, sample_weight=None):
            entered.set()
            if not release.wait(60):
                raise RuntimeError("the test never let the round go on")
            return super().fit(X, y, sample_weight=sample_weight)

    pool = blobs()
    session = Session(pool, tmp_path / "labels", learner=HeldLogistic(max_iter=200), watch=False)
    try:
        release.set()
        label_next(session, 30)
        session.retrain()  # round 1, not held: the held round below replaces a model
        release.clear()
        entered.clear()
        label_next(session, 5)
        trains_on = len(set(session.labels) - session.item_state.audit_ids())
        future = session.retrain(background=True)
        assert entered.wait(30), "the background round never started"

        served = []

        def label_while_held():
            for _ in range(10):
                item = session.next()
                assert item is not None
                served.append(item)
                session.label(item, pool.true_label(item.item_id))
            session.suggest(served[-1].item_id)
            session.progress()
            session.history  # noqa: B018 - reads under the session's lock too

        finished, raised = run_within(30, label_while_held)
        assert finished, "next()/label() waited for the training round"
        assert not raised, raised
        assert not future.done() and session.model_state()["training"]
        assert len({q.item_id for q in served}) == 10  # each item served once
        assert all(q.suggestion is not None for q in served)  # from round 1's model meanwhile
        assert session.history["round"].tolist() == [1]

        release.set()
        assert session.wait_for_training(60)
        history = session.history
        # the held round trained on the labels it saw when it started, and it is installed
        assert history["round"].tolist() == [1, 2]
        assert history["n_labels"].tolist()[1] == trains_on
        assert session.suggested_by == "round 2"
        item = session.next()
        assert item is not None and item.item_id not in session.labels
    finally:
        release.set()
        session.close()


def test_a_round_scores_the_head_of_its_queue_before_serving_it(tmp_path):
    """The suggestions of the items next() serves after a round are computed by the round
    (in the background), not by next(): here the learner counts its predictions."""
    predicted = []

    class Spreading(LogisticRegression):
        """A classifier that also gives probabilities for the unlabeled items (as label
        spreading does), so the queue is ranked without predicting over the pool."""

        def fit(self, X, y, X_unlabeled=None):
            super().fit(X, y)
            self.transductive_proba_ = super().predict_proba(X_unlabeled)
            return self

        def predict_proba(self, X):  # the suggestions
            predicted.append(len(X))
            return super().predict_proba(X)

        def query_proba(self, X):  # what the queue ranks by, outside the spread
            return super().predict_proba(X)

    pool = blobs(n=3000)
    session = Session(pool, tmp_path / "labels", learner=Spreading(max_iter=200), watch=False)
    try:
        label_next(session, 30)
        session.retrain()
        assert predicted, "the round computed the suggestions of its queue's head"
        assert sum(predicted) < len(pool)  # those, not the whole pool
        before = len(predicted)
        items = session.peek(20)
        assert all(q.suggestion is not None for q in items)
        assert len(predicted) == before  # serving predicted nothing
    finally:
        session.close()
