"""LightHead: label spreading over a neighbour graph plus a logistic-regression head."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import LightHead
from workbench.learn.head import accepts_graph, spread_labels


def chain(n: int):
    """A path graph 0 - 1 - 2 - ... - n-1, each row listing its (up to 2) neighbours."""
    neighbors = np.full((n, 2), -1)
    neighbors[1:, 0] = np.arange(n - 1)
    neighbors[:-1, 1] = np.arange(1, n)
    return neighbors, (neighbors >= 0).astype(np.float32)


def test_labels_spread_along_the_graph():
    neighbors, weights = chain(6)
    # rows 0 and 1 are labeled: class 0 at one end, class 1 at the other (row 1 = node 5)
    order = np.array([0, 5, 1, 2, 3, 4])  # labeled rows first
    row_of = np.argsort(order)
    nb = np.where(neighbors[order] >= 0, row_of[np.maximum(neighbors[order], 0)], -1)
    proba = spread_labels(nb, weights[order], np.array([0, 1]), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    by_node = proba[row_of]
    assert (by_node[:3, 0] > 0.5).all() and (by_node[3:, 1] > 0.5).all()
    assert by_node[1, 0] > by_node[2, 0]  # confidence fades with distance


def test_rows_the_labels_never_reach_are_uniform():
    neighbors = np.array([[1], [0], [-1]])  # row 2 is isolated
    proba = spread_labels(neighbors, np.ones((3, 1)), np.array([1]), 3)
    np.testing.assert_allclose(proba[2], [1 / 3] * 3)
    assert proba[1].argmax() == 1


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0, 0], [4, 0], [0, 4]])
    return (centers[y] + rng.normal(size=(n, 2))).astype(np.float32), y


def knn(X, k=5):
    d = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1)[:, :k]
    return idx, np.exp(-np.take_along_axis(d, idx, 1))


def test_fit_without_a_graph_is_a_plain_head():
    X, y = blobs()
    head = LightHead(random_state=0).fit(X[:30], np.array(["a", "b", "c"])[y[:30]])
    assert list(head.classes_) == ["a", "b", "c"]
    assert head.transductive_proba_ is None and head.n_pseudo_labels_ == 0
    assert (head.predict(X) == np.array(["a", "b", "c"])[y]).mean() > 0.9
    np.testing.assert_allclose(head.query_proba(X), head.predict_proba(X))


def test_fit_with_a_graph_learns_from_the_unlabeled_items():
    X, y = blobs()
    labeled = np.r_[0:6]
    neighbors, weights = knn(X)
    head = LightHead(max_pseudo=100, random_state=0).fit(
        X[labeled], y[labeled], X_unlabeled=X[6:], graph=(neighbors, weights))
    assert head.transductive_proba_.shape == (294, 3)
    assert (head.transductive_proba_.argmax(axis=1) == y[6:]).mean() > 0.9
    assert head.n_pseudo_labels_ == 100  # a seeded sample of the spread labels
    # the query head knows only the 6 labels; the final head learned from the pseudo-labels too
    alone = LightHead(random_state=0).fit(X[labeled], y[labeled])
    np.testing.assert_allclose(head.query_proba(X), alone.predict_proba(X))
    assert not np.allclose(head.predict_proba(X), alone.predict_proba(X))
    again = LightHead(max_pseudo=100, random_state=0).fit(
        X[labeled], y[labeled], X_unlabeled=X[6:], graph=(neighbors, weights))
    np.testing.assert_array_equal(again.predict_proba(X), head.predict_proba(X))


def test_a_graph_of_the_wrong_size_is_a_clear_error():
    X, y = blobs(20)
    neighbors, weights = knn(X)
    with pytest.raises(ValueError, match="graph must be two arrays of 20 rows"):
        LightHead().fit(X[:5], y[:5], X_unlabeled=X[5:], graph=(neighbors[:10], weights[:10]))


def test_accepts_graph():
    from sklearn.linear_model import LogisticRegression

    assert accepts_graph(LightHead()) and not accepts_graph(LogisticRegression())
