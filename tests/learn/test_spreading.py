"""Label spreading as a linear system (workbench/learn/spreading.py): the solver reaches the
fixed point the plain iteration converges to, and masking items out is cutting their edges."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from workbench.data.neighbors import graph_matrix
from workbench.learn.spreading import NeighbourGraph, spread


def knn_graph(n=400, k=8, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, 1.0, (n // 4, 5)) for c in range(4)])
    distances, index = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    return index[:, 1:], np.exp(-(distances[:, 1:] / np.median(distances[:, -1])) ** 2)


def fixed_point(W, rows, codes, n_classes, alpha=0.9, prior=None):
    """(I - alpha S) F = Y solved densely over the items in `rows`, rows normalised."""
    W = W.toarray()[np.ix_(rows, rows)]
    degree = W.sum(axis=1)
    scale = np.where(degree > 0, 1 / np.sqrt(np.where(degree > 0, degree, 1)), 0)
    S = scale[:, None] * W * scale[None, :]
    Y = np.zeros((len(rows), n_classes))
    Y[np.arange(len(codes)), codes] = 1
    if prior is not None:
        Y[len(codes):] = prior
    F = np.linalg.solve(np.eye(len(rows)) - alpha * S, Y)
    return F / F.sum(axis=1, keepdims=True)


def test_the_solver_reaches_the_fixed_point_of_spreading():
    neighbors, weights = knn_graph()
    W = graph_matrix(neighbors, weights)
    codes, labeled = np.array([0, 1, 2, 3, 0, 1]), [0, 100, 200, 300, 1, 101]
    rows = np.concatenate([labeled, np.setdiff1d(np.arange(400), labeled)])
    got = spread(NeighbourGraph(W, rows), codes, 4)
    np.testing.assert_allclose(got, fixed_point(W, rows, codes, 4), atol=2e-3)
    np.testing.assert_allclose(got.sum(axis=1), 1, atol=1e-6)
    # and it is what the plain iteration F <- alpha S F + (1 - alpha) Y tends to
    loose = spread(NeighbourGraph(W, rows), codes, 4, tol=1e-7, max_iter=400)
    np.testing.assert_allclose(loose, fixed_point(W, rows, codes, 4), atol=1e-5)


def test_items_outside_the_rows_are_cut_out_of_the_graph():
    neighbors, weights = knn_graph()
    W = graph_matrix(neighbors, weights)
    audit = np.arange(0, 400, 7)  # not rows: their edges must not carry labels
    rows = np.concatenate([[1, 101, 201, 301], np.setdiff1d(np.arange(400), np.r_[audit, 1, 101, 201, 301])])
    got = spread(NeighbourGraph(W, rows), np.arange(4), 4, tol=1e-7, max_iter=400)
    np.testing.assert_allclose(got, fixed_point(W, rows, np.arange(4), 4), atol=1e-5)


def test_a_prior_seeds_the_unlabeled_rows():
    neighbors, weights = knn_graph()
    W = graph_matrix(neighbors, weights)
    rows = np.arange(400)
    prior = np.full((398, 4), 0.05)
    prior[:, 3] = 0.4
    got = spread(NeighbourGraph(W, rows), np.array([0, 0]), 4, prior=prior, tol=1e-7, max_iter=400)
    np.testing.assert_allclose(got, fixed_point(W, rows, np.array([0, 0]), 4, prior=prior), atol=1e-5)


def test_a_bad_graph_is_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        NeighbourGraph.from_arrays(np.zeros((3, 2), int), np.ones((3, 1)))
    with pytest.raises(ValueError, match="index 7 is outside its 3 rows"):
        NeighbourGraph.from_arrays(np.array([[1], [7], [0]]), np.ones((3, 1)))


def test_the_graph_says_how_many_steps_unless_the_caller_does():
    """A graph of 30 neighbours an item (a pool above the exact-search size) spreads in at most
    10 steps, one of 10 in at most 20; an explicit `max_iter` still wins."""
    rng = np.random.default_rng(3)
    n = 2_000
    neighbors = np.stack([(np.arange(n) + d) % n for d in range(1, 31)], axis=1).astype(np.int32)
    weights = np.ones_like(neighbors, dtype=np.float32)
    wide = NeighbourGraph.from_arrays(neighbors, weights)
    narrow = NeighbourGraph.from_arrays(neighbors[:, :10], weights[:, :10])
    assert (wide.max_steps, narrow.max_steps) == (10, 20)
    codes = rng.integers(0, 3, 5)
    def steps(graph, max_iter=None):
        return spread(graph, codes, 3, tol=0, max_iter=max_iter)

    np.testing.assert_array_equal(steps(wide), steps(wide, 10))
    assert not np.array_equal(steps(wide), steps(wide, 30))
    np.testing.assert_array_equal(steps(narrow), steps(narrow, 20))
