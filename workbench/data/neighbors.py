"""The neighbour graph of a representation: each item's nearest other items and how similar
they are, which label spreading runs over (`workbench.learn.head`). N_NEIGHBORS is part of
a representation's fingerprint (`workbench.data.representation`)."""

from __future__ import annotations

import numpy as np

__all__ = ["N_NEIGHBORS", "nearest_neighbors"]

N_NEIGHBORS = 10       # neighbours per item in the graph


def nearest_neighbors(features: np.ndarray, k: int = N_NEIGHBORS) -> tuple[np.ndarray, np.ndarray]:
    """Each item's k nearest other items (exact, Euclidean) and a Gaussian similarity whose
    width is the median distance to the k-th neighbour."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(features) - 1)
    distances, index = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    distances, index = _drop_self(distances, index)
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
