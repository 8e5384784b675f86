import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, Pool, Session, TorchClassifier, datasets, logistic_regression


@pytest.fixture(scope="module")
def split():
    return datasets.digits().train_test_split(0.3, seed=0)


def make(split, tmp_path, **kw):
    train, test = split
    kw.setdefault("learner", logistic_regression())
    return Session(train, tmp_path / "labels", test=(test.X, test.y), **kw)


def label_truth(session, n):
    for item in session.peek(n):
        session.label(item.item_id, session.pool.true_label(item.item_id))


def test_test_split_as_a_pool_or_a_pair(split, tmp_path):
    train, test = split
    as_pool = Session(train, tmp_path / "a", test=test, learner=logistic_regression())
    as_pair = Session(train, tmp_path / "b", test=(test.X, test.y), learner=logistic_regression())
    for session in (as_pool, as_pair):
        label_truth(session, 20)
        session.retrain()
    assert as_pool.history["accuracy"].tolist() == as_pair.history["accuracy"].tolist()
    with pytest.raises(ValueError, match="test X has 3 rows but y has 2 labels"):
        Session(train, tmp_path / "c", test=(test.X[:3], test.y[:2]))


def test_cold_start_is_diverse(split, tmp_path):
    session = make(split, tmp_path)
    first = session.peek(20)
    assert all(i.strategy == "cold-start" and i.suggestion is None for i in first)
    truths = {session.pool.true_label(i.item_id) for i in first}
    assert len(truths) >= 8  # one item per k-means cluster covers most digits


def test_label_is_in_the_store_on_disk(split, tmp_path):
    session = make(split, tmp_path)
    head = session.next()
    session.label(head.item_id, 3)
    on_disk = pd.read_parquet(tmp_path / "labels")
    assert on_disk[["item_id", "label", "action", "query"]].values.tolist() == [
        [head.item_id, "3", "label", "cold-start"]]
    assert session.next().item_id != head.item_id


def test_retrain_reranks_by_strategy_and_suggests(split, tmp_path):
    session = make(split, tmp_path, strategy="margin")
    label_truth(session, 30)
    session.retrain()
    hist = session.history
    assert hist["n_labels"].tolist() == [30] and hist["accuracy"].iloc[0] > 0.7
    assert hist["eval_on"].iloc[0] == "held-out test split (540 items)"
    items = session.peek(5)
    assert [i.strategy for i in items] == ["margin"] * 5
    assert all(a.score >= b.score for a, b in zip(items, items[1:]))
    assert items[0].suggestion in session.classes and 0 < items[0].confidence <= 1
    assert "hesitates between" in items[0].reason


def test_skip_undo_relabel(split, tmp_path):
    session = make(split, tmp_path)
    a, b = session.peek(2)
    session.label(a.item_id, 1)
    session.skip(b.item_id)
    assert b.item_id not in [i.item_id for i in session.peek(5)]
    assert session.undo() == b.item_id
    assert session.next().item_id == b.item_id
    session.label(a.item_id, 2)  # fix a label: a relabel, history kept
    assert session.labels[a.item_id] == 2
    events = session.store.events()
    assert events["action"].tolist() == ["label", "skip", "undo", "relabel"]
    assert session.undo() == a.item_id and session.labels[a.item_id] == 1


def test_reopening_resumes_exactly(split, tmp_path):
    train, test = split
    learner = TorchClassifier(min_steps=60, max_epochs=60, n_members=2)
    session = make(split, tmp_path, learner=learner)
    label_truth(session, 25)
    session.retrain()
    label_truth(session, 3)
    expected = [i.item_id for i in session.peek(10)]
    session.close()
    again = make(split, tmp_path, learner=learner)
    assert len(again.labels) == 28 and again.history.shape[0] == 1
    assert [i.item_id for i in again.peek(10)] == expected


def test_background_retrain_every_n_labels(split, tmp_path):
    session = make(split, tmp_path, retrain_every=10)
    events = []
    session.subscribe(events.append)
    label_truth(session, 10)
    session._future.result(timeout=60)
    label_truth(session, 5)  # labeling goes on meanwhile and afterwards
    assert "retrain_finished" in events and session.model_state()["rounds"] == 1
    assert session.model_state()["training"] is False


def test_failed_training_loses_no_label(split, tmp_path):
    class Broken(logistic_regression().__class__):
        def fit(self, X, y):
            raise RuntimeError("out of memory (simulated)")

    session = make(split, tmp_path, learner=Broken())
    label_truth(session, 12)
    session.retrain(background=True).result(timeout=30)
    state = session.model_state()
    assert "out of memory" in state["last_error"] and not state["training"]
    assert len(LabelStore.open(tmp_path / "labels").current_labels()) == 12


def test_audit_sample_gives_honest_accuracy_without_a_test_split(tmp_path):
    pool = datasets.digits().subset(np.arange(400))
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), audit_every=5)
    for _ in range(3):
        label_truth(session, 30)
        session.retrain()
    audit = session.store.current_labels().query("query == 'audit'")
    assert len(audit) >= 10
    last = session.history.iloc[-1]
    assert last["eval_on"].startswith("random audit sample") and 0 < last["accuracy"] <= 1
    assert last["n_labels"] == len(session.labels) - len(audit)  # audit items not trained on


def test_bad_input(split, tmp_path):
    session = make(split, tmp_path)
    with pytest.raises(ValueError, match=r"label 11 is not one of the classes \['0', '1'"):
        session.label(session.next().item_id, 11)
    with pytest.raises(KeyError, match="item_id 'digit-9999' is not in the pool"):
        session.label("digit-9999", 1)
    with pytest.raises(ValueError, match="at least two classes"):
        Session(Pool.from_arrays(np.ones((3, 2))), tmp_path / "other")
    label_truth(session, 1)
    with pytest.raises(ValueError, match="at least 2 classes to train"):
        session.retrain()
    assert len(pd.read_parquet(tmp_path / "labels")) == 1  # nothing acknowledged was lost


class _RecordingLearner(logistic_regression().__class__):
    """Logistic regression whose fit also takes X_unlabeled, and remembers what it got."""

    seen: list = []

    def fit(self, X, y, X_unlabeled=None):
        _RecordingLearner.seen.append((len(X), None if X_unlabeled is None else len(X_unlabeled)))
        return super().fit(X, y)


def test_self_training_learners_get_the_unlabeled_rest_of_the_pool(split, tmp_path):
    train, _ = split
    _RecordingLearner.seen = []
    session = Session(train, tmp_path / "labels", learner=_RecordingLearner(max_iter=500))  # audit mode
    label_truth(session, 40)
    session.retrain()
    audited = len([i for i in session.labels if i in session._audit_ids()])
    assert audited > 0
    # trained on the labels minus audit items; the unlabeled pool excludes every labeled item
    assert _RecordingLearner.seen == [(40 - audited, len(train) - 40)]


def test_default_strategy_is_diverse_margin(split, tmp_path):
    session = make(split, tmp_path, learner=logistic_regression())
    assert session.strategy_name == "diverse_margin"
    label_truth(session, 30)
    session.retrain()
    items = session.peek(10)
    assert [i.strategy for i in items] == ["diverse_margin"] * 10
    assert "hesitates between" in items[0].reason or "closest call" in items[0].reason


def test_self_trained_session_ranks_by_the_labels_only_model(split, tmp_path):
    from workbench.strategies import margin_scores

    learner = TorchClassifier(min_steps=60, max_epochs=60, n_members=2)
    session = make(split, tmp_path, learner=learner, strategy="margin")
    label_truth(session, 30)
    session.retrain()
    model = session.model
    assert model.n_pseudo_labels_ > 0
    items = session.peek(5)
    X = session.pool.X[[i.position for i in items]]
    np.testing.assert_allclose([i.score for i in items], margin_scores(model.query_proba(X)), atol=1e-5)
    assert [str(i.suggestion) for i in items] == [str(c) for c in model.predict(X)]  # final model
