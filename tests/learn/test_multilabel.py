"""The multi-label head, its strategies and its metrics."""

import numpy as np
import pytest

from workbench.learn.metrics import multi_label_scores
from workbench.learn.multilabel import MultiLabelHead
from workbench.learn.strategies import (
    binary_uncertainty,
    diverse_uncertainty,
    max_uncertainty,
    mean_uncertainty,
)


def blobs(n=300, seed=0):
    """Three independent classes, each decided by one feature's sign."""
    X = np.random.default_rng(seed).normal(size=(n, 6))
    return X, (X[:, :3] > 0).astype(np.int8)


def test_head_learns_each_class_on_its_own():
    X, Y = blobs()
    head = MultiLabelHead(classes=["a", "b", "c"]).fit(X, Y)
    proba = head.predict_proba(X)
    assert proba.shape == (300, 3) and not np.allclose(proba.sum(axis=1), 1)  # not one distribution
    assert list(head.classes_) == ["a", "b", "c"]
    assert multi_label_scores(Y, head.predict(X), head.classes_)["micro_f1"] > 0.95


def test_head_takes_label_lists_and_keeps_a_class_seen_one_way_as_its_rate():
    X, Y = blobs(40)
    lists = [[c for c, on in zip("ab", row[:2]) if on] for row in Y]
    head = MultiLabelHead(classes=["a", "b", "never"]).fit(X, lists)
    rate = head.predict_proba(X)[:, 2]
    assert np.allclose(rate, 0.5 / 41)  # (0 positives + 0.5) / (40 items + 1)
    with pytest.raises(ValueError, match="names 'z', which is not among the classes"):
        MultiLabelHead(classes=["a"]).fit(X[:2], [["a"], ["z"]])
    with pytest.raises(ValueError, match="Y has 3 columns but there are 2 classes"):
        MultiLabelHead(classes=["a", "b"]).fit(X, Y)
    with pytest.raises(ValueError, match="has 2 features, the head was fitted on 6"):
        head.predict_proba(X[:, :2])


def test_binary_uncertainty_and_the_strategies():
    proba = np.array([[0.5, 0.99], [0.9, 0.9], [0.6, 0.6], [0.99, 0.01]])
    assert np.allclose(binary_uncertainty(proba)[0], [1.0, 0.02])
    assert mean_uncertainty(proba, 4).positions.tolist() == [2, 0, 1, 3]  # 0.8, 0.51, 0.2, 0.02
    assert max_uncertainty(proba, 1).positions.tolist() == [0]           # one decision at even odds
    features = np.arange(8, dtype=float).reshape(4, 2)
    query = diverse_uncertainty(proba, 4, features=features, batch=2, rng=0)
    assert sorted(query.positions.tolist()) == [0, 1, 2, 3]
    assert np.allclose(query.scores, binary_uncertainty(proba[query.positions]).mean(axis=1))


def test_multi_label_scores_by_hand():
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    pred = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 0]])
    s = multi_label_scores(truth, pred, ["a", "b", "c"])
    assert s["accuracy"] == 0.5                           # items 1 and 3 wholly right
    assert s["hamming_loss"] == pytest.approx(2 / 12)
    assert s["micro_f1"] == pytest.approx(2 * 4 / (5 + 5))  # 4 hits, 5 true, 5 predicted
    assert s["recall"] == {"a": 1.0, "b": 1.0, "c": 0.0}
    assert s["macro_f1"] == pytest.approx((1 + 1 + 0) / 3)
    assert np.isnan(multi_label_scores(np.zeros((0, 2)), np.zeros((0, 2)), ["a", "b"])["micro_f1"])
