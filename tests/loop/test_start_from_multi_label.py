"""A multi-label session started from a multi-label bundle (`Session(start_from=...)`): the
bundle's per-class probabilities suggest sets and rank from the first item, and training
continues from what it knew instead of starting over from ten labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench import Pool, Session, datasets, load_model
from workbench.data.tasks import LabelSet
from workbench.learn.multilabel import MultiLabelHead
from workbench.loop.inputs import PRIOR_CONFIDENCE, with_prior_labels


def _sets(targets):
    return [[int(t), "odd" if t % 2 else "even"] + (["big"] if t >= 5 else []) for t in targets]


@pytest.fixture(scope="module")
def pools():
    d = load_digits()
    y = _sets(d.target)
    test = dict(X_test=d.images[1300:1700], y_test=y[1300:1700], task="multi_label")
    return (Pool.from_arrays(d.images[:600], y[:600], **test),
            Pool.from_arrays(d.images[600:1200], y[600:1200], **test))


@pytest.fixture(scope="module")
def bundle(pools, tmp_path_factory):
    a, _ = pools
    base = tmp_path_factory.mktemp("ml-start")
    teacher = Session(a, base / "a", watch=False, seed=0)
    teacher.label_many({q.item_id: a.true_label(q.item_id) for q in teacher.peek(150)})
    teacher.retrain()
    path = teacher.export(base / "teacher")
    teacher.close()
    return path


def test_round_0_is_the_bundle_it_suggests_sets_and_ranks_at_once(pools, bundle, tmp_path):
    _, b = pools
    session = Session(b, tmp_path / "s", watch=False, start_from=bundle)
    first = session.next()
    assert isinstance(first.suggestion, LabelSet)
    assert "the model you started from" in first.reason and first.strategy == "diverse_uncertainty"
    row = session.history.iloc[0]
    assert row["round"] == 0 and row["n_labels"] == 0 and row["micro_f1"] > 0.9, row
    position = b.position(first.item_id)
    np.testing.assert_allclose(session.pool_proba([position]),
                               load_model(bundle).predict_proba(b.X[[position]]), atol=1e-5)
    assert list(first.suggestion) == list(load_model(bundle).predict(b.X[[position]])[0])
    session.close()


def test_training_continues_from_the_bundle_instead_of_starting_over(pools, bundle, tmp_path):
    _, b = pools
    micro = {}
    for start in (bundle, None):
        session = Session(b, tmp_path / f"s{start is None}", watch=False, start_from=start)
        session.label_many({q.item_id: b.true_label(q.item_id) for q in session.peek(10)})
        session.retrain()
        micro[start is None] = session.history["micro_f1"].tolist()
        session.close()
    (at_start, after), (fresh,) = micro[False], micro[True]
    # ten new labels refine the bundle's model: they neither replace it nor undo it
    assert after > fresh + 0.2 and after > at_start - 0.03, micro


def test_the_sessions_class_order_may_differ_from_the_bundles(pools, bundle, tmp_path):
    _, b = pools
    classes = load_model(bundle).classes
    predicted, scores = {}, {}
    for order in (classes, list(reversed(classes))):
        session = Session(b, tmp_path / str(order[0]), watch=False, start_from=bundle, classes=order)
        assert session.class_names == [str(c) for c in order]
        session.label_many({i: b.true_label(i) for i in b.item_ids[:10]})
        session.retrain()
        predicted[str(order[0])] = [set(map(str, s)) for s in session.model.predict(b.X)]
        scores[str(order[0])] = session.history["micro_f1"].iloc[-1]
        session.close()
    first, second = predicted.values()
    assert first == second and len(set(scores.values())) == 1 and min(scores.values()) > 0.9, scores


def test_a_bundle_of_another_task_is_refused_naming_both(pools, bundle, tmp_path):
    _, b = pools
    digits = datasets.digits()
    single = Session(digits, tmp_path / "single", watch=False)
    single.label_many({i: digits.true_label(i) for i in digits.item_ids[:60]})
    single_bundle = single.export(tmp_path / "single-model")
    single.close()
    with pytest.raises(ValueError, match=r"'multi_label' pool and the model .* a 'single' model"):
        Session(b, tmp_path / "m", watch=False, start_from=single_bundle)
    with pytest.raises(ValueError, match=r"'single' pool and the model .* a 'multi_label' model"):
        Session(digits, tmp_path / "d", watch=False, start_from=bundle)


def test_a_prior_teaches_each_class_its_sure_calls_only():
    proba = np.array([[0.95, 0.50], [0.02, 0.97], [0.6, 0.4], [0.99, 0.01]])
    train, y, unlabeled = np.array([10]), np.array([[1, 1]], dtype=np.int8), np.arange(4)
    rows, Y, rest = with_prior_labels((proba, ["a", "b"]), train, y, unlabeled, partial=True)
    assert rows.tolist() == [10, 0, 1, 3] and rest.tolist() == [2]
    assert Y.tolist() == [[1, 1], [1, -1], [0, 1], [1, 0]]  # -1: the prior was not sure of b
    rows, Y, rest = with_prior_labels((proba, ["a", "b"]), train, y, unlabeled)  # any other learner
    assert rows.tolist() == [10, 1, 3] and Y.tolist() == [[1, 1], [0, 1], [1, 0]] and rest.tolist() == [0, 2]
    assert PRIOR_CONFIDENCE == 0.9


def test_the_head_learns_each_class_from_the_answers_it_has():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1).astype(np.int8)
    unknown = Y.copy()
    unknown[40:, 1] = -1  # the second class's answer is not known for the last 20 items
    head = MultiLabelHead(classes=["a", "b"], random_state=0).fit(X, unknown)
    a = MultiLabelHead(classes=["a"], random_state=0).fit(X, Y[:, :1])
    b = MultiLabelHead(classes=["b"], random_state=0).fit(X[:40], Y[:40, 1:])
    np.testing.assert_allclose(head.coef_, np.hstack([a.coef_, b.coef_]))
    unknown[:, 0] = -1  # no answer at all: the even rate
    assert MultiLabelHead(classes=["a", "b"]).fit(X, unknown).predict_proba(X[:1])[0, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"0 or 1 .* or -1 \(not known\)"):
        MultiLabelHead().fit(X, np.full((60, 2), 2))


def test_a_head_given_its_own_class_order_learns_the_sessions_columns(pools, tmp_path):
    _, b = pools
    names = [str(c) for c in b.classes]
    scores = []
    for head in (MultiLabelHead(), MultiLabelHead(classes=list(reversed(names)))):
        session = Session(b, tmp_path / str(len(scores)), watch=False, learner=head)
        session.label_many({i: b.true_label(i) for i in b.item_ids[:80]})
        session.retrain()
        scores.append(session.history["micro_f1"].iloc[-1])
        session.close()
    assert scores[0] == scores[1] and scores[0] > 0.8, scores  # reversed, it scored 0.03
    with pytest.raises(ValueError, match=r"MultiLabelHead's classes \['a', 'b'\] differ from the session's"):
        Session(b, tmp_path / "x", watch=False, learner=MultiLabelHead(classes=["a", "b"]))
