"""The neighbour graph above exact search: an approximate index (faiss IVF-Flat, built and
queried partition by partition) with the exact graph's contract, so that label spreading
works on pools of any size. The exact-size threshold is passed in (or lowered) so that the
approximate path runs on a few thousand items."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import Pool
from workbench.data import ann
from workbench.data import neighbors as nb
from workbench.data import representation as R
from workbench.learn import spreading
from workbench.learn.head import LightHead
from workbench.loop.inputs import graph_rows


def manifold(n: int, seed: int = 0, dim: int = 128, latent: int = 16, classes: int = 5):
    """L2-normalised 128-d vectors on a 16-d curved manifold, in `classes` clusters: like a
    representation's (what items look like varies in few directions), not isotropic noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    z = rng.normal(size=(n, latent)) + 3 * rng.normal(size=(classes, latent))[y]
    x = np.tanh(z @ rng.normal(size=(latent, dim)) / np.sqrt(latent)) + 0.1 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


@pytest.fixture(scope="module")
def data():
    return manifold(6_000)


@pytest.fixture(scope="module")
def graphs(data):
    """(exact, approximate, progress messages of the approximate one) on the same vectors."""
    X, _ = data
    exact = nb.nearest_neighbors(X)
    messages = []
    # k as the exact graph's: recall@10 is what is compared (the default above the exact size
    # is nb.WIDE_NEIGHBORS: test_above_the_exact_size_items_get_more_neighbours)
    approx = nb.nearest_neighbors(X, k=nb.N_NEIGHBORS, progress=lambda f, m: messages.append((f, m)),
                                  exact_max_items=1_000)
    return exact, approx, messages


def recall(exact_index, approx_index) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact_index.shape[1]
                          for a, b in zip(exact_index, approx_index)]))


def test_approximate_graph_finds_the_exact_neighbours(graphs):
    (exact_index, _), (approx_index, _), messages = graphs
    assert recall(exact_index, approx_index) >= 0.95
    # and it was the approximate index that found them, not exact search
    assert any("approximate" in m for _, m in messages)


def test_approximate_graph_keeps_the_exact_graphs_contract(data, graphs):
    X, y = data
    _, (index, weights), _ = graphs
    assert index.shape == weights.shape == (len(X), nb.N_NEIGHBORS)
    assert index.dtype == np.int32 and weights.dtype == np.float32
    assert ((index >= 0) & (index < len(X))).all()
    assert not (index == np.arange(len(X))[:, None]).any()           # never its own neighbour
    assert all(len(set(row)) == len(row) for row in index[:500])      # no neighbour twice
    assert ((weights > 0) & (weights <= 1)).all()
    assert (np.diff(weights, axis=1) <= 1e-6).all()                   # nearest first
    # the same width rule as the exact graph: the median k-th distance gives exp(-1)
    assert np.median(weights[:, -1]) == pytest.approx(np.exp(-1), abs=0.01)
    assert (y[index] == y[:, None]).mean() > 0.95


def test_the_graph_is_built_partition_by_partition_with_progress(data, graphs, monkeypatch):
    X, _ = data
    _, approx, _ = graphs
    monkeypatch.setattr(ann, "CHUNK", 1_000)
    messages = []
    chunked = nb.nearest_neighbors(X, k=nb.N_NEIGHBORS, progress=lambda f, m: messages.append((f, m)),
                                   exact_max_items=1_000)
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("indexed" in m for _, m in messages) == 6          # 6 partitions added ...
    assert sum("found them for" in m for _, m in messages) == 6   # ... and 6 queried
    # how the rows were cut into partitions does not change the graph
    np.testing.assert_array_equal(chunked[0], approx[0])
    np.testing.assert_array_equal(chunked[1], approx[1])


def test_the_same_input_gives_the_same_graph(data, graphs):
    X, _ = data
    _, (index, weights), _ = graphs
    again_index, again_weights = nb.nearest_neighbors(X.copy(), k=nb.N_NEIGHBORS, exact_max_items=1_000)
    np.testing.assert_array_equal(again_index, index)
    np.testing.assert_array_equal(again_weights, weights)


def test_duplicates_do_not_break_it():
    X, _ = manifold(2_000, seed=1)
    # every item three times, and 40 copies of one item (more than k): exact ties everywhere
    X = np.concatenate([X, X, X, np.repeat(X[:1], 40, axis=0)])
    index, weights = nb.nearest_neighbors(X, k=nb.N_NEIGHBORS, exact_max_items=500)
    assert index.shape == (len(X), nb.N_NEIGHBORS)
    assert not (index == np.arange(len(X))[:, None]).any()
    assert np.isfinite(weights).all() and ((weights > 0) & (weights <= 1)).all()
    # an item's copies are at distance 0: each finds its two twins first
    for i in (7, 1234, 2_000 + 99):
        twins = {j for j in (i % 2_000, i % 2_000 + 2_000, i % 2_000 + 4_000) if j != i}
        assert set(index[i, :2].tolist()) == twins
    exact_index, _ = nb.nearest_neighbors(X)
    dist = lambda idx: np.linalg.norm(X[idx[:, -1]] - X, axis=1)  # noqa: E731  k-th distance
    np.testing.assert_allclose(np.median(dist(index)), np.median(dist(exact_index)), atol=1e-3)


def test_a_pool_above_the_exact_size_gets_a_graph_that_label_spreading_runs_on(monkeypatch):
    X, y = manifold(3_000, seed=2, dim=32, classes=3)
    pool = Pool.from_arrays(X, y)
    monkeypatch.setattr(nb, "EXACT_MAX_ITEMS", 500)
    messages = []
    rep = R.build(pool, progress=lambda f, m: messages.append(m))
    assert rep.has_graph and rep.neighbors.shape == (3_000, nb.WIDE_NEIGHBORS)
    assert any("approximate" in m for m in messages)
    assert rep.matrix is not None and "ordering the graph for label spreading" in messages
    # LightHead spreads 30 labels over it (what a session's round does: inputs.graph_rows)
    rng = np.random.default_rng(0)
    train = np.sort(rng.choice(3_000, 30, replace=False))
    unlabeled = np.setdiff1d(np.arange(3_000), train)
    graph = graph_rows(rep, train, unlabeled)
    assert graph.max_steps == spreading.WIDE_GRAPH_STEPS  # a wider graph spreads in fewer steps
    head = LightHead(random_state=0).fit(rep.features[train], y[train], X_unlabeled=rep.features[unlabeled],
                                         graph=graph)
    assert head.transductive_proba_ is not None and head.n_pseudo_labels_ > 0
    spread = head.classes_[head.transductive_proba_.argmax(axis=1)]
    assert (spread == y[unlabeled]).mean() > 0.9
    # max_graph_items still means "no graph above this many items"
    assert not R.build(pool, max_graph_items=1_000).has_graph


def test_above_the_exact_size_items_get_more_neighbours(data, monkeypatch):
    """Up to the exact size 10 neighbours an item (the graphs cached representations were
    keyed by), above it 30; the count is part of the representation's key."""
    X, _ = data
    assert nb.neighbours_for(nb.EXACT_MAX_ITEMS) == nb.N_NEIGHBORS == 10
    assert nb.neighbours_for(nb.EXACT_MAX_ITEMS + 1) == nb.WIDE_NEIGHBORS == 30
    index, weights = nb.nearest_neighbors(X[:2_000], exact_max_items=1_000)
    assert index.shape == weights.shape == (2_000, nb.WIDE_NEIGHBORS)
    assert nb.nearest_neighbors(X[:1_000], exact_max_items=1_000)[0].shape == (1_000, nb.N_NEIGHBORS)
    pool = Pool.from_arrays(X[:2_000], np.zeros(2_000, dtype=int))
    narrow = R.fingerprint(pool, "vectors")
    monkeypatch.setattr(nb, "EXACT_MAX_ITEMS", 1_000)
    assert R.fingerprint(pool, "vectors") != narrow  # a cached 10-neighbour graph is not reused


def test_a_large_graph_is_renumbered_for_locality_and_spreads_the_same(data, monkeypatch):
    """Above the exact size the matrix's items are renumbered (reverse Cuthill-McKee) so that
    a product reads its vector from cache; the graph, and what spreads over it, is the same."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    from workbench.learn.spreading import NeighbourGraph, spread

    X, y = data
    index, weights = nb.nearest_neighbors(X[:3_000], exact_max_items=1_000)
    W = nb.graph_matrix(index, weights)
    assert nb.in_locality_order(W)[0] is W  # 3,000 items: at most the exact size, as it is
    monkeypatch.setattr(nb, "EXACT_MAX_ITEMS", 1_000)
    matrix, slot = nb.in_locality_order(W)
    assert sorted(slot.tolist()) == list(range(3_000))
    assert matrix.has_sorted_indices and matrix.nnz == W.nnz
    assert (matrix[slot][:, slot] != W).nnz == 0   # matrix[slot[i], slot[j]] == W[i, j]
    # neighbours are nearer each other in the new numbering
    rows, cols = W.nonzero()
    new_rows, new_cols = matrix.nonzero()
    assert np.median(np.abs(new_rows - new_cols)) < np.median(np.abs(rows - cols)) / 5
    assert (slot[reverse_cuthill_mckee(W, symmetric_mode=True)] == np.arange(3_000)).all()
    # spreading 30 labels over either gives the same distributions, row for row
    rng = np.random.default_rng(0)
    order = rng.permutation(3_000)[:2_500]  # 500 items are audit items: not rows
    codes = np.searchsorted(np.unique(y), y[order[:30]])
    plain = spread(NeighbourGraph(W, order), codes, 5)
    local = spread(NeighbourGraph(matrix, slot[order]), codes, 5)
    np.testing.assert_allclose(local, plain, atol=1e-5)
    assert (local.argmax(axis=1)[30:] == np.searchsorted(np.unique(y), y[order[30:]])).mean() > 0.9


def test_a_large_graphs_ordered_matrix_is_built_with_it_and_kept_in_the_cache(tmp_path, monkeypatch):
    """Above the exact size the matrix label spreading multiplies by costs 7 s at 1,000,000
    items: the build makes it and the cache file keeps it, so no first round waits for it. A
    file saved without it (before 2026-12-08) still loads and builds it on use; a copy with
    other neighbours does not carry the old matrix."""
    import dataclasses

    X, y = manifold(3_000, seed=3, dim=32, classes=3)
    monkeypatch.setattr(nb, "EXACT_MAX_ITEMS", 500)
    pool = Pool.from_arrays(X, y)
    from workbench.data.representation_cache import RepresentationCache

    rep = R.RepresentationJob.start(pool, cache=RepresentationCache(tmp_path), background=False).result()
    assert rep.matrix is not None and rep.ordered_graph
    matrix, slot = rep.matrix
    again = R.RepresentationJob.start(pool, cache=RepresentationCache(tmp_path), background=False).result()
    assert again.from_cache and again.matrix is not None
    assert (again.matrix[0] != matrix).nnz == 0 and (again.matrix[1] == slot).all()
    assert again.graph_matrix() is again.matrix
    # what label spreading gets from it is the matrix of the graph itself
    W = nb.graph_matrix(rep.neighbors, rep.weights)
    assert (again.matrix[0][slot][:, slot] != W).nnz == 0

    old = tmp_path / "old.npz"
    rep.matrix, kept = None, rep.matrix
    rep.save(old)
    plain = R.Representation.load(old)
    assert plain.matrix is None and (plain.graph_matrix()[0] != matrix).nnz == 0
    rep.matrix = kept
    shuffled = dataclasses.replace(rep, neighbors=rep.neighbors[:, ::-1].copy())
    assert shuffled.matrix is None
    assert rep.with_encoder(rep.encoder).matrix is kept
    # a saved matrix whose indices or order are out of range is refused whole (the cache then
    # builds the representation again), never multiplied by
    saved = tmp_path / "saved.npz"
    rep.save(saved)
    other = R.build(Pool.from_arrays(manifold(3_000, seed=4, dim=32, classes=3)[0], y))  # same size
    damages = {
        "indices out of range": ("graph__indices", lambda a: a + 5_000),
        "slot out of range": ("graph__slot", lambda a: a[::-1] * 2),
        "one huge slot (8 TiB to count)": ("graph__slot",
                                           lambda a: np.where(np.arange(len(a)) == 0, 2**40, a)),
        "slot not whole numbers": ("graph__slot", lambda a: a.astype(float)),
        "NaN weights": ("graph__data", lambda a: np.full_like(a, np.nan)),
        "negative weights": ("graph__data", lambda a: -a),
        "text weights": ("graph__data", lambda a: a.astype(str)),
        "another pool's matrix": ("graph__indices", lambda a: other.matrix[0].indices),
        "no edges": ("graph__indptr", lambda a: np.zeros_like(a)),
    }
    for what, (name, damage) in damages.items():
        with np.load(saved) as data:
            arrays = {k: data[k] for k in data.files}
        arrays[name] = damage(arrays[name])
        if what == "another pool's matrix":
            arrays.update(graph__data=other.matrix[0].data, graph__indptr=other.matrix[0].indptr,
                          graph__slot=other.matrix[1])
        np.savez(tmp_path / "damaged.npz", **arrays)
        with pytest.raises(ValueError, match="the saved graph"):
            R.Representation.load(tmp_path / "damaged.npz")
        assert RepresentationCache(tmp_path).get("damaged") is None, what  # rebuilt, not raised
    # at most the exact size nothing is saved beside the graph: it takes milliseconds
    monkeypatch.setattr(nb, "EXACT_MAX_ITEMS", 50_000)
    small = tmp_path / "small.npz"
    rep.save(small)
    with np.load(small) as data:
        assert not any(name.startswith("graph__") for name in data.files)
