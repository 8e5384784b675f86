"""What a session's learner sees: the pool's representation for the default learner, the
pool's own features for any other; scores computed on demand; a representation being
learned never holds up labeling."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from workbench import LightHead, Pool, Session, datasets
from workbench.data import representation as R
from workbench.data.representation import Representation, UnitEncoder
from workbench.learn.head import spread_labels
from workbench.learn.spreading import spread
from workbench.loop.inputs import Scores, graph_rows


@pytest.fixture(scope="module")
def digits():
    return datasets.digits().subset(np.arange(400))


def label_some(session, n):
    for item in session.peek(n):
        session.label(item, session.pool.true_label(item.item_id))


class Spy(LogisticRegression):
    """LogisticRegression that records the shape of what it was fitted on."""

    def fit(self, X, y, sample_weight=None):
        Spy.seen = X.shape
        return super().fit(X, y, sample_weight)


def test_the_default_learner_trains_a_light_head_on_the_representation(tmp_path, digits):
    session = Session(digits, tmp_path / "s", watch=False, audit_every=4)
    assert isinstance(session.learner, LightHead) and session.inputs.uses_representation
    label_some(session, 40)
    session.retrain()
    model = session.model.learner
    assert model.n_features_in_ == 128  # the representation, not 64 pixels
    assert model.transductive_proba_ is not None and model.n_pseudo_labels_ > 0
    row = session.history.iloc[-1]
    assert {"accuracy", "macro_f1", "balanced_accuracy", "recall"} <= set(session.history.columns)
    if not np.isnan(row["accuracy"]):
        assert 0 <= row["macro_f1"] <= 1 and set(row["recall"]) <= set(session.class_names)
    item = session.next()
    assert item.suggestion is not None and "trained on your labels alone" in item.reason
    state = session.model_state()
    assert state["representation"] is None and "last_macro_f1" in state
    session.close()


def test_any_scikit_learn_classifier_sees_the_pools_own_features(tmp_path, digits):
    session = Session(digits, tmp_path / "s", learner=Spy(max_iter=500), watch=False)
    assert not session.inputs.uses_representation and session.inputs.state() is None
    label_some(session, 30)
    session.retrain()
    assert Spy.seen[1] == 64 and session.model_state()["representation"] is None
    session.close()
    # ... unless asked to use the representation, and the default learner can be told not to
    session = Session(digits, tmp_path / "t", learner=Spy(max_iter=500), watch=False,
                      representation=True)
    label_some(session, 30)
    session.retrain()
    assert Spy.seen[1] == 128
    session.close()
    session = Session(digits, tmp_path / "u", watch=False, representation=False)
    label_some(session, 30)
    session.retrain()
    assert session.model.learner.n_features_in_ == 64 and session.model.learner.transductive_proba_ is None
    session.close()
    with pytest.raises(ValueError, match="representation must be 'auto', True or False"):
        Session(digits, tmp_path / "v", watch=False, representation="yes")


def test_a_reopened_session_finds_the_representation_cached(tmp_path, monkeypatch, digits):
    monkeypatch.setattr(R, "_CACHES", {})
    cache = tmp_path / "cache"
    first = Session(digits, tmp_path / "a", watch=False, representation_cache=cache)
    rep = first.inputs.representation()
    first.close()
    monkeypatch.setattr(R, "_CACHES", {})  # as if in a new process: only the file is left
    second = Session(digits, tmp_path / "b", watch=False, representation_cache=cache)
    again = second.inputs.representation()
    assert again.from_cache and again.fingerprint == rep.fingerprint
    second.close()


def test_a_large_cached_representation_is_read_in_the_background(tmp_path, monkeypatch, digits):
    """A cache file above READ_AT_ONCE_BYTES (1 GB at 1,000,000 items, 2.7 s to read) is read
    by the representation's job: the session opens and serves items meanwhile."""
    from workbench.data import representation_cache

    cache = tmp_path / "cache"
    first = Session(digits, tmp_path / "a", watch=False, representation_cache=cache)
    fingerprint = first.inputs.representation().fingerprint
    first.close()
    monkeypatch.setattr(R, "_CACHES", {})
    monkeypatch.setattr(R, "READ_AT_ONCE_BYTES", 0)
    release, real_load = threading.Event(), Representation.load

    def slow_load(path):
        release.wait(30)
        return real_load(path)

    monkeypatch.setattr(representation_cache.Representation, "load", slow_load)
    started = time.monotonic()
    second = Session(digits, tmp_path / "b", watch=False, representation_cache=cache)
    assert time.monotonic() - started < 20 and not second.inputs.ready()
    assert re.fullmatch(r"reading the pool's representation from its cache file \(\d+ MB\)",
                        second.model_state()["representation"])
    assert second.next() is not None  # the cold-start queue serves meanwhile
    release.set()
    again = second.inputs.representation()
    assert again.from_cache and again.fingerprint == fingerprint
    second.close()


def test_learning_the_representation_never_holds_up_labeling(tmp_path, monkeypatch, digits):
    release = threading.Event()
    real_build = R.build

    def slow_build(pool, progress=None, **kw):
        progress(0.3, "encoding images")
        release.wait(30)
        return real_build(pool, progress=progress, **kw)

    monkeypatch.setattr(R, "build", slow_build)
    monkeypatch.setattr(R, "_CACHES", {})
    events = []
    started = time.monotonic()
    session = Session(digits, tmp_path / "s", watch=False, representation_cache=False)
    session.subscribe(events.append)
    assert "learning the pool's representation: 30%" in session.model_state()["representation"]
    label_some(session, 30)  # the cold-start queue serves items meanwhile
    future = session.retrain(background=True)  # queued behind the representation, not waiting
    assert time.monotonic() - started < 20 and not future.done()
    release.set()
    session.wait_for_training(60)
    assert len(session.history) == 1 and "representation_progress" in events
    assert session.model_state()["representation"] is None
    session.close()


def test_what_the_first_round_needs_is_made_while_the_first_labels_are_given(tmp_path, digits):
    """Once the representation is ready, a background thread encodes the held-out split and
    builds the graph's matrix, so the first round waits for neither (at 1,000,000 items they
    were 2.4 s and 7 s of it); the round then uses those very arrays."""
    X_test, y_test = digits.X[:50], digits.y[:50]
    session = Session(digits.subset(np.arange(50, 400)), tmp_path / "s", test=(X_test, y_test),
                      watch=False, representation_cache=False)
    rep = session.inputs.representation()
    deadline = time.monotonic() + 30
    while (session.inputs._test is None or rep.matrix is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    encoded, matrix = session.inputs._test, rep.matrix
    assert encoded is not None and encoded[0] is X_test and matrix is not None
    np.testing.assert_allclose(encoded[1], rep.transform(X_test), atol=1e-6)
    label_some(session, 30)
    session.retrain()
    assert session.inputs._test is encoded and rep.matrix is matrix  # made once, used as made
    assert not np.isnan(session.history["accuracy"].iloc[-1])
    session.close()


def test_graph_rows_leave_out_what_is_neither_trained_on_nor_unlabeled():
    neighbors = np.array([[1, 2], [0, 3], [3, 0], [2, 1]], dtype=np.int32)
    rep = Representation(np.zeros((4, 2), np.float32), neighbors, np.ones((4, 2), np.float32),
                         UnitEncoder(), "key", "normalised")
    # item 3 is an audit item: not a row, and not anyone's neighbour
    graph = graph_rows(rep, np.array([2]), np.array([0, 1]))
    assert graph.rows.tolist() == [2, 0, 1] and graph.matrix is rep.graph_matrix()[0]  # built once
    # spreading over it is spreading over the graph with item 3's edges cut: rows [2, 0, 1]
    by_arrays = spread_labels(np.array([[-1, 1], [2, 0], [1, -1]]), np.array([[0, 1], [1, 1], [1, 0]]),
                              np.array([1]), 2)
    np.testing.assert_allclose(spread(graph, np.array([1]), 2), by_arrays, atol=1e-6)
    assert by_arrays[1:, 1].min() > 0.5


def test_scores_are_computed_once_and_only_where_asked():
    asked = []

    def compute(positions):
        asked.append(positions.tolist())
        return np.tile(positions[:, None], (1, 2)).astype(np.float32)

    scores = Scores(20, 2, compute, block=4).fill(np.array([0, 1]), np.full((2, 2), 9.0))
    assert scores[1].tolist() == [9.0, 9.0] and asked == []
    assert scores[np.array([1, 5, 5, 9])][:, 0].tolist() == [9.0, 5.0, 5.0, 9.0]
    assert scores[7].tolist() == [7.0, 7.0] and scores[3].tolist() == [3.0, 3.0]
    assert asked == [[4, 5, 6, 7, 8, 9, 10, 11], [2, 3]]  # whole blocks, each row once


def test_texts_use_their_own_features(tmp_path):
    phrases = ("cats purr", "dogs bark", "cats meow", "dogs growl")
    texts = [f"{w} number {i}" for i in range(10) for w in phrases]
    pool = Pool.from_texts(texts, ["cat", "dog"] * 20)
    session = Session(pool, tmp_path / "s", watch=False, audit_every=None)
    rep = session.inputs.representation()
    assert rep.method == "normalised" and rep.features.shape[0] == 40
    label_some(session, 6)
    session.retrain()
    assert session.suggest(pool.item_ids[0])[0] == "cat"
    session.close()


def test_the_cold_start_is_spread_over_the_representation_once_it_is_learned(tmp_path, monkeypatch,
                                                                           digits):
    from workbench.learn.queue import diverse_positions

    release = threading.Event()
    real_build = R.build

    def slow_build(pool, progress=None, **kw):
        release.wait(30)
        return real_build(pool, progress=progress, **kw)

    monkeypatch.setattr(R, "build", slow_build)
    monkeypatch.setattr(R, "_CACHES", {})
    session = Session(digits, tmp_path / "s", watch=False, representation_cache=False, batch_size=10,
                      audit_every=0)  # no audit slots: the queue is the cold start alone
    n = 2 * len(session.classes)
    shown = session.peek(3)  # served while the representation is learned: the pool's own pixels
    on_pixels = digits.item_ids[diverse_positions(digits.X, n, seed=0)]
    assert [q.item_id for q in shown] == list(on_pixels[:3])
    session.label(shown[0], digits.true_label(shown[0].item_id))
    release.set()
    rep = session.inputs.representation()
    deadline = time.monotonic() + 10
    while not session.inputs.ready() and time.monotonic() < deadline:
        time.sleep(0.01)
    spread = [i for i in digits.item_ids[diverse_positions(rep.features, n, seed=0)]
              if i != shown[0].item_id]
    after = session.peek(n)
    assert [q.item_id for q in after][:len(spread)] == spread
    assert all(q.strategy == "cold-start" for q in after)
    # an item served before the respread keeps the role it was shown in
    session.label(shown[1], digits.true_label(shown[1].item_id), query="cold-start")
    assert session.store.events()["query"].tolist() == ["cold-start", "cold-start"]
    session.close()


def test_a_random_strategy_starts_from_a_random_sample(tmp_path, digits):
    session = Session(digits, tmp_path / "s", watch=False, strategy="random", audit_every=0)
    shown = [q.item_id for q in session.peek(20)]
    assert shown == list(digits.item_ids[np.random.default_rng(0).permutation(len(digits))[:20]])
    assert session.peek(1)[0].reason == "cold start: a random pick, made before any model was trained"
    session.close()


@pytest.mark.parametrize("closes", [True, False])
def test_a_script_that_ends_while_the_test_split_is_encoded_exits_cleanly(tmp_path, closes):
    """The warm-up thread encodes the held-out split with torch; a script that closes its
    session (or not) and ends meanwhile must exit 0: torch still working in a daemon thread as
    the interpreter exits aborts the process (exit 134, 'terminate called without an active
    exception'). close() and an atexit hook let the step finish first."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from workbench import Session, datasets
        pool = datasets.digits()
        X_test, y_test = np.concatenate([pool.X] * 20), np.concatenate([pool.y] * 20)
        session = Session(pool, {str(tmp_path / "s")!r} + sys.argv[1], watch=False, test=(X_test, y_test),
                          representation_cache={str(tmp_path / "cache")!r})
        session.inputs.representation()
        time.sleep(float(sys.argv[1]))
        if {closes}:
            session.close()
            assert not session.inputs._warming.is_alive()
    """)
    for delay in ("0.2", "0.2", "0.8"):  # the first run builds the representation, the others read it
        done = subprocess.run([sys.executable, "-c", code, delay], capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, (delay, done.returncode, done.stderr[-2000:])
