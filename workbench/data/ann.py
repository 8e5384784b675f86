"""Approximate nearest neighbours for pools too large for exact search (`workbench.data.neighbors`
calls this above its EXACT_MAX_ITEMS), with faiss's inverted-file index (IndexIVFFlat).

Why faiss IVF-Flat (measured against hnswlib and pynndescent in benchmarks/ann_graph.py,
results in benchmarks/results/ann_graph.json): it keeps recall@10 above 0.95, it is built
partition by partition (the coarse k-means is learned once on a seeded sample, then vectors
are added and queried chunk by chunk, so a pool's parts can stream through it), and its
result does not depend on threads: training is seeded, each vector goes to the list of its
nearest centroid, and a query scans the `nprobe` nearest lists exactly, so the same input
gives the same graph on any number of cores. Graph indexes (HNSW, NN-descent) insert in
parallel in an order the threads decide, so they are reproducible only on one thread. faiss-cpu
also ships as a prebuilt wheel (no compiler needed), unlike hnswlib's source distribution.

Knows nothing of labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["IVFGraphIndex", "approximate_neighbors"]

CHUNK = 65_536          # vectors added or queried per step (one progress report each)
LISTS_PER_ROOT = 4      # inverted lists: about 4 * sqrt(N), the usual IVF rule of thumb
PROBES = 24             # lists scanned per query; recall@10 >= 0.95 measured up to 1M items
TRAIN_PER_LIST = 39     # k-means training sample per list (the fewest faiss accepts without a warning)
TRAIN_ITERATIONS = 10   # k-means rounds: cells only route the search, so rough centroids do
SEED = 0


class IVFGraphIndex:
    """A faiss IndexIVFFlat over `n_items` vectors of `dim` dimensions, trained on a sample,
    filled with `add(part)` and asked with `query(part, k)`, one partition at a time."""

    def __init__(self, n_items: int, dim: int, *, seed: int = SEED, probes: int = PROBES):
        import faiss

        self.n_lists = max(1, min(int(LISTS_PER_ROOT * math.sqrt(n_items)), n_items // 8 or 1))
        self.quantizer = faiss.IndexFlatL2(dim)
        self.index = faiss.IndexIVFFlat(self.quantizer, dim, self.n_lists)
        self.index.cp.seed = seed          # k-means initialisation: the graph is reproducible
        self.index.cp.niter = TRAIN_ITERATIONS
        self.index.nprobe = min(probes, self.n_lists)
        self.seed, self.dim, self.n_items, self.added = seed, dim, n_items, 0

    def train(self, features: np.ndarray) -> None:
        """Learn the coarse centroids on a seeded sample of `features` (all of them, or any
        representative rows: a partition-by-partition caller passes a sample of the pool)."""
        n = len(features)
        take = min(n, TRAIN_PER_LIST * self.n_lists)
        rows = np.sort(np.random.default_rng(self.seed).choice(n, take, replace=False)) if take < n else None
        sample = features if rows is None else features[rows]
        self.index.train(_f32(sample))

    def add(self, part: np.ndarray) -> None:
        """Add the next rows; their positions continue from the rows already added."""
        self.index.add(_f32(part))
        self.added += len(part)

    def query(self, part: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, index) of each row's k nearest added vectors (Euclidean, nearest
        first, the row itself included when it was added). A row whose probed lists hold
        fewer than k vectors is asked again over every list."""
        distances, index = self.index.search(_f32(part), k)
        short = np.flatnonzero((index < 0).any(axis=1))
        if len(short):
            probes = self.index.nprobe
            self.index.nprobe = self.n_lists
            try:
                distances[short], index[short] = self.index.search(_f32(part[short]), k)
            finally:
                self.index.nprobe = probes
        return np.sqrt(np.maximum(distances, 0)), index


def approximate_neighbors(features: np.ndarray, k: int, *, chunk: int | None = None,
                          progress: Callable[[float, str], None] | None = None,
                          seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(distances, index), N x k, of every row's k nearest rows (itself usually first),
    built and queried `chunk` rows at a time (default CHUNK) with progress (0..1) as it
    goes. How the rows are chunked does not change the result: each lands in the list of
    its nearest centroid, in order, whichever chunk it came in."""
    progress = progress or (lambda fraction, message: None)
    chunk = int(chunk or CHUNK)
    n = len(features)
    ann = IVFGraphIndex(n, features.shape[1], seed=seed)
    progress(0.0, f"approximate neighbours: learning {ann.n_lists} cells of {n:,} items")
    ann.train(features)
    starts = range(0, n, chunk)
    steps, done = 2 * len(starts), 0
    for start in starts:
        ann.add(features[start:start + chunk])
        done += 1
        progress(done / steps, f"approximate neighbours: indexed {min(start + chunk, n):,} of {n:,} items")
    distances = np.empty((n, k), dtype=np.float32)
    index = np.empty((n, k), dtype=np.int64)
    for start in starts:
        part = slice(start, start + chunk)
        distances[part], index[part] = ann.query(features[part], k)
        done += 1
        progress(done / steps, f"approximate neighbours: found them for {min(start + chunk, n):,} "
                               f"of {n:,} items")
    return distances, index


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)
