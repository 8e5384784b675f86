"""The neighbour graph of a representation: each item's nearest other items and how similar
they are, which label spreading runs over (`workbench.learn.head`). How many neighbours
(`neighbours_for` the pool's size) is part of a representation's fingerprint
(`workbench.data.representation`).

Up to EXACT_MAX_ITEMS items the search is exact (scikit-learn), so the graphs of pools that
size are what they always were (cached representations rely on it). Above it an approximate
index (faiss IVF-Flat, `workbench.data.ann`) is built and queried partition by partition:
exact search costs N^2 * D, which at 1,000,000 items is hours; the index, minutes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["EXACT_MAX_ITEMS", "N_NEIGHBORS", "WIDE_NEIGHBORS", "graph_matrix", "in_locality_order",
           "nearest_neighbors", "neighbours_for"]

EXACT_MAX_ITEMS = 50_000  # above this many items the graph is approximate (recall@10 ~0.99 measured)
N_NEIGHBORS = 10       # neighbours per item in the graph of a pool up to EXACT_MAX_ITEMS ...
# ... and above it. At a fixed k the neighbours of a larger pool lie closer, so each step of
# label spreading carries a label over less of the space: on 1,000,000 jittered digits 10
# neighbours needed 36 labels to 95% accuracy (the first 50,000, exact: 24-27) and 30 needed
# 28 (seeds 0-4, benchmarks/ann_neighbours.py). On the pools of exact size 30 is no better and
# on the digits worse (31 labels to 95% against 23; benchmarks/graph_neighbours.py), so they
# keep 10. A graph this wide spreads in fewer steps (workbench.learn.spreading.steps_for).
WIDE_NEIGHBORS = 30


def neighbours_for(n_items: int, exact_max_items: int | None = None) -> int:
    """How many neighbours each item gets in the graph of `n_items` items."""
    limit = EXACT_MAX_ITEMS if exact_max_items is None else exact_max_items
    return N_NEIGHBORS if n_items <= limit else WIDE_NEIGHBORS


def nearest_neighbors(features: np.ndarray, k: int | None = None,
                      progress: Callable[[float, str], None] | None = None, *,
                      exact_max_items: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each item's k nearest other items (Euclidean; exact up to `exact_max_items`, default
    EXACT_MAX_ITEMS, approximate above; k by default `neighbours_for` that many items) and a
    Gaussian similarity whose width is the median distance to the k-th neighbour: (index
    int32 N x k, never the item itself; weights float32 in (0, 1]). `progress(fraction,
    message)` hears how far the search is."""
    progress = progress or (lambda fraction, message: None)
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"a neighbour graph needs an N x D array of at least 2 items, "
                         f"got shape {features.shape}")
    limit = EXACT_MAX_ITEMS if exact_max_items is None else exact_max_items
    k = min(neighbours_for(len(features), limit) if k is None else k, len(features) - 1)
    if len(features) <= limit:
        from sklearn.neighbors import NearestNeighbors

        progress(0.0, f"finding each item's {k} nearest neighbours (exact)")
        distances, index = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    else:
        from workbench.data.ann import approximate_neighbors

        progress(0.0, f"finding each item's {k} nearest neighbours (approximate, {len(features):,} items)")
        distances, index = approximate_neighbors(features, k + 1, progress=progress)
    distances, index = _drop_self(distances, index)
    progress(1.0, f"found each item's {k} nearest neighbours")
    width = float(np.median(distances[:, -1])) or 1.0
    return index.astype(np.int32), np.exp(-(distances / width) ** 2).astype(np.float32)


def _drop_self(distances, index):
    """Remove each row's own position (usually first; duplicates may put it later)."""
    rows = np.arange(len(index))[:, None]
    is_self = index == rows
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True  # drop the farthest where the item itself was not returned
    keep = ~is_self
    k = index.shape[1] - 1
    return distances[keep].reshape(-1, k), index[keep].reshape(-1, k)


def graph_matrix(neighbors: np.ndarray, weights: np.ndarray):
    """The graph as a symmetric sparse matrix (float32 CSR, one row and column per row of
    `neighbors`): an edge either way counts both ways, with the larger weight; index -1 or
    weight 0 is no edge. What label spreading multiplies by."""
    from scipy import sparse

    n_rows, k = neighbors.shape
    index = np.int32 if n_rows < 2**31 else np.int64  # half the memory of the edges while built
    keep = (neighbors.ravel() >= 0) & (np.asarray(weights).ravel() > 0)
    rows = np.repeat(np.arange(n_rows, dtype=index), k)[keep]
    cols = neighbors.ravel()[keep].astype(index)
    vals = np.asarray(weights, dtype=np.float32).ravel()[keep]
    W = sparse.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_rows))
    del rows, cols, vals
    W = W.maximum(W.T).tocsr()
    W.sort_indices()
    return W


def in_locality_order(W) -> tuple:
    """The symmetric matrix `W` with its items renumbered so that neighbours sit near each
    other in memory (reverse Cuthill-McKee), and `slot`, each item's new number: `(matrix,
    slot)`, matrix[slot[i], slot[j]] == W[i, j]. A sparse product then reads the vector it
    multiplies mostly from cache: at 1,000,000 items with 30 neighbours one product took 25 ms
    instead of 50 ms, for 1.5 s once per representation (measured 2026-12-07). Below the
    exact-search size the vector fits in cache anyway, and W is returned as it is."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    n = W.shape[0]
    if n <= EXACT_MAX_ITEMS:
        return W, np.arange(n)
    order = reverse_cuthill_mckee(W, symmetric_mode=True)  # order[new] = old
    slot = np.empty(n, dtype=np.int64)
    slot[order] = np.arange(n)
    # row `new` of the result is row order[new] of W, its columns renumbered; built from W's
    # arrays directly, so that no more than one extra copy of the edges is held at a time
    lengths = np.diff(W.indptr)[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    take = np.repeat(W.indptr[order].astype(np.int64) - indptr[:-1], lengths)
    take += np.arange(len(take), dtype=np.int64)
    from scipy import sparse

    out = sparse.csr_matrix((W.data[take], slot.astype(W.indices.dtype)[W.indices[take]],
                             indptr.astype(W.indptr.dtype)), shape=W.shape)
    del take
    out.sort_indices()
    return out, slot
