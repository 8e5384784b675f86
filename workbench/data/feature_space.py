"""A pool's learned feature space, `Representation`: a vector for every pool item, its
neighbour graph, and the fitted encoder that maps new items of the same kind into the same
space; saved and loaded as a .npz of plain arrays (no pickle)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.data.encoders import Encoder
from workbench.data.pretrained import ENCODERS  # the built-in encoders and the pretrained one

__all__ = ["Representation"]

_GRAPH_LOCK = threading.Lock()


@dataclass
class Representation:
    """Features of every pool item (row i = pool position i), its neighbour graph, and the
    fitted encoder that maps new items of the same kind into the same space."""

    features: np.ndarray              # (N, D) float32
    neighbors: np.ndarray | None      # (N, k) int32 pool positions, nearest first; None: no graph
    weights: np.ndarray | None        # (N, k) float32 similarities in (0, 1]
    encoder: Encoder
    fingerprint: str
    method: str
    build_seconds: float = 0.0
    from_cache: bool = False
    # `graph_matrix()`'s (matrix, slot) once built; a large pool's is built with the graph and
    # saved with it (`ordered_graph`), so that no round waits seconds for it
    matrix: tuple | None = field(default=None, init=False, repr=False)  # not copied by replace()

    def __len__(self) -> int:
        return len(self.features)

    @property
    def has_graph(self) -> bool:
        return self.neighbors is not None

    @property
    def ordered_graph(self) -> bool:
        """Whether the graph's matrix is renumbered for locality (a pool above the
        exact-search size): then it costs seconds to build, and is saved with the graph."""
        from workbench.data.neighbors import EXACT_MAX_ITEMS

        return self.has_graph and len(self) > EXACT_MAX_ITEMS

    def graph_matrix(self):
        """The neighbour graph as a symmetric sparse matrix (what label spreading multiplies
        by) and each pool position's row in it: `(matrix, slot)`. Above the exact-search size
        the items are renumbered so that neighbours sit near each other in memory
        (`neighbors.in_locality_order`, twice as fast a product at 1,000,000 items); below,
        slot is every position itself. Built on first use and kept; above the exact size it
        is built with the graph and saved with it, since at 1,000,000 items building it takes
        7 s (measured 2026-12-07), which a first round would otherwise wait for."""
        if self.neighbors is None:
            raise ValueError("this representation has no neighbour graph")
        with _GRAPH_LOCK:  # a round and the session's warm-up thread build it once between them
            if self.matrix is None:
                from workbench.data.neighbors import graph_matrix, in_locality_order

                self.matrix = in_locality_order(graph_matrix(self.neighbors, self.weights))
            return self.matrix

    def with_encoder(self, encoder: Encoder) -> Representation:
        """The same features and graph (its matrix too), read by `encoder` (a bundle's, equal
        to this one's: its digest is in the key)."""
        rep = dataclasses.replace(self, encoder=encoder)
        rep.matrix = self.matrix
        return rep

    def transform(self, X) -> np.ndarray:
        """Features of new items given in the pool's own feature space (e.g. a test split),
        or as texts for an encoder that reads texts (a pretrained text model)."""
        if getattr(self.encoder, "reads", None) in ("texts", "items"):
            return self.encoder.transform(X)
        return self.encoder.transform(np.asarray(X, dtype=np.float32))

    def save(self, path: Path) -> None:
        arrays = {f"encoder__{k}": v for k, v in self.encoder.arrays().items()}
        arrays.update(features=self.features, fingerprint=np.array(self.fingerprint),
                      method=np.array(self.method), build_seconds=np.array(self.build_seconds))
        if self.neighbors is not None:
            arrays.update(neighbors=self.neighbors, weights=self.weights)
        if self.matrix is not None and self.ordered_graph:
            matrix, slot = self.matrix
            arrays.update(graph__data=matrix.data, graph__indices=matrix.indices,
                          graph__indptr=matrix.indptr, graph__slot=slot)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader sees the whole file or none (two notebooks may race).
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="writing-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Representation:
        with np.load(path, allow_pickle=False) as data:
            method = str(data["method"])
            encoder = ENCODERS[method].from_arrays(
                {k[len("encoder__"):]: data[k] for k in data.files if k.startswith("encoder__")})
            has_graph = "neighbors" in data.files
            rep = cls(features=data["features"], neighbors=data["neighbors"] if has_graph else None,
                      weights=data["weights"] if has_graph else None, encoder=encoder,
                      fingerprint=str(data["fingerprint"]), method=method,
                      build_seconds=float(data["build_seconds"]), from_cache=True)
            if has_graph and "graph__slot" in data.files:  # older files have none: built on use
                rep.matrix = _saved_matrix(data, len(rep), rep.neighbors, rep.weights)
            return rep


def _saved_matrix(data, n: int, neighbors: np.ndarray, weights: np.ndarray) -> tuple:
    """The graph's (matrix, slot) as `save` wrote them, checked (ValueError: the cache builds
    the representation again): an index out of range would make a product read outside the
    vector it multiplies, and a weight that is not a positive float, or a matrix that is not
    this graph's, would spread labels wrongly. Each item's own edges are checked on a sample
    of 1,000 items (milliseconds), against the neighbours saved beside it."""
    from scipy import sparse

    data_, indices, indptr, slot = (data[f"graph__{k}"] for k in ("data", "indices", "indptr", "slot"))
    if data_.dtype != np.float32 or not (np.isfinite(data_).all() and (data_ > 0).all()):
        raise ValueError("the saved graph's weights are not positive float32 numbers")
    if slot.dtype.kind not in "iu" or slot.shape != (n,) or (n and (slot.min() < 0 or slot.max() >= n)) \
            or not (np.bincount(slot, minlength=n) == 1).all():
        raise ValueError(f"the saved graph's slot is not an order of the {n} items")
    try:
        matrix = sparse.csr_matrix((data_, indices, indptr), shape=(n, n))
        matrix.check_format(full_check=True)
    except (ValueError, TypeError, IndexError) as e:
        raise ValueError(f"the saved graph's matrix is malformed ({e})") from None
    for item in np.random.default_rng(0).choice(n, min(n, 1_000), replace=False):
        edges = (neighbors[item] >= 0) & (weights[item] > 0)
        row = slot[item]
        in_row = matrix.indices[matrix.indptr[row]:matrix.indptr[row + 1]]
        if not np.isin(slot[neighbors[item][edges]], in_row).all():
            raise ValueError(f"the saved graph's matrix is not this graph's (item {item}'s edges differ)")
    return matrix, slot
