"""Label spreading (Zhou et al. 2004) over a neighbour graph: the fixed point of
F <- alpha * S F + (1 - alpha) * Y, where S is the symmetrically normalised graph and Y holds
the labels (one-hot) and, optionally, a prior's probabilities.

The fixed point is the solution of the linear system (I - alpha S) F = (1 - alpha) Y, and it is
solved as one: conjugate gradients, one sparse product per step, run until no probability
moves by more than `tol`, or for MAX_STEPS steps. The plain iteration above gains a factor
`alpha` (0.9) per product: on 200,000 items of a 64-d mixture's kNN graph with 100 labels its
30 products left probabilities up to 0.006 from the fixed point, conjugate gradients 0.0007
after 15 products (the system's condition number is (1 + alpha) / (1 - alpha) = 19). On a
large pool with few labels both are limited by how far the labels are: see MAX_STEPS. At
1,000,000 items with 30 neighbours a step (one product per class) costs about 0.1 s on two
threads, the matrix's items in locality order (`Representation.graph_matrix`); it is most
of a round there (benchmarks/at_scale.py).

The graph is `NeighbourGraph`: the symmetric matrix of a whole pool, built once per
representation (`Representation.graph_matrix`), and which of its items are the learner's rows.
A round spreads over the rows it was given without copying the matrix for them: the others
(audit items) are masked out of the normalisation instead, which is the same as deleting their
edges.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from workbench.data.neighbors import N_NEIGHBORS, graph_matrix

__all__ = ["NeighbourGraph", "as_graph", "spread", "steps_for"]

# Sparse products let go of the interpreter lock: the classes' products on 2 threads took
# 0.16 s instead of 0.34 s at 1,000,000 items on 2 cores.
THREADS = max(1, min(4, os.cpu_count() or 1))
TOLERANCE = 1e-3  # stop once no item's probability of any class moves by more than this ...
CHECK_EVERY = 3   # ... over this many steps (a check costs about a quarter of a step)
# At most this many steps. Each product carries the labels one more edge away, so a large
# pool with few labels needs about as many steps as items are edges from the nearest label:
# on the 1,000,000 jittered digits with 100 labels, 20 steps put 99.7% of the items in the
# same class as the exact fixed point (30: 99.997%), where the 30 plain iterations used
# before put 98.6% (measured 2026-12-05 on benchmarks/at_scale.py's dataset, labels drawn at
# random). Smaller pools stop early on `tol`.
MAX_STEPS = 20
# A graph of more neighbours (a pool above the exact-search size: neighbors.WIDE_NEIGHBORS)
# carries a label further each step, and each step costs more: on the 1,000,000 jittered
# digits 30 neighbours took 28 labels to 95% accuracy in 10 steps as in 20 (seeds 0-4; with
# 100 random labels 10 steps put 98.9% of the items in the fixed point's class), and 10
# steps over them cost 3.3 s on 2 cores where 20 over 10 neighbours cost 2.7 s (both before
# the items were put in locality order, which halved a product over the 30).
WIDE_GRAPH_STEPS = 10


def steps_for(n_neighbours: int) -> int:
    """At most this many spreading steps over a graph of `n_neighbours` an item."""
    return MAX_STEPS if n_neighbours <= N_NEIGHBORS else WIDE_GRAPH_STEPS


@dataclass(frozen=True)
class NeighbourGraph:
    """A neighbour graph as a learner gets it: `matrix`, the symmetric similarity matrix over
    a set of items (a pool's, in the order `Representation.graph_matrix` keeps them), and
    `rows`, the matrix row behind each of the learner's rows (`[X; X_unlabeled]`, in order).
    Edges to items outside `rows` do not count.
    `max_steps`: at most this many spreading steps over it unless a caller says otherwise
    (`steps_for` its neighbours)."""

    matrix: sparse.csr_matrix
    rows: np.ndarray
    max_steps: int = MAX_STEPS

    @classmethod
    def from_arrays(cls, neighbors, weights) -> NeighbourGraph:
        """From `(neighbors, weights)`, two (n_rows, k) arrays over the learner's rows
        (index -1 or weight 0: no neighbour)."""
        neighbors, weights = np.asarray(neighbors), np.asarray(weights)
        if neighbors.ndim != 2 or neighbors.shape != weights.shape:
            raise ValueError(f"graph must be two (n_rows, k) arrays of the same shape, "
                             f"got shapes {neighbors.shape} and {weights.shape}")
        if neighbors.size and neighbors.max() >= len(neighbors):
            raise ValueError(f"graph neighbour index {neighbors.max()} is outside its {len(neighbors)} rows")
        return cls(graph_matrix(neighbors, weights), np.arange(len(neighbors)), steps_for(neighbors.shape[1]))

    def __len__(self) -> int:
        return len(self.rows)


def as_graph(graph) -> NeighbourGraph:
    """A learner's `graph` argument as a NeighbourGraph: one already, or `(neighbors, weights)`."""
    return graph if isinstance(graph, NeighbourGraph) else NeighbourGraph.from_arrays(*graph)


def spread(graph: NeighbourGraph, codes: np.ndarray, n_classes: int, *, alpha: float = 0.9,
           max_iter: int | None = None, prior: np.ndarray | None = None,
           tol: float = TOLERANCE) -> np.ndarray:
    """Spread the labels `codes` of the graph's first len(codes) rows (and `prior`, rows x
    classes, over the rest, if given) to every row, in at most `max_iter` steps (None: the
    graph's `max_steps`). Returns (len(graph), n_classes) row distributions; a row the labels
    never reach is uniform."""
    W, rows = graph.matrix, np.asarray(graph.rows, dtype=np.int64)
    n_items = W.shape[0]
    inside = np.zeros(n_items, dtype=np.float32)
    inside[rows] = 1
    degree = (W @ inside) * inside  # edges to items outside `rows` do not count
    scale = np.zeros(n_items, dtype=np.float32)
    np.divide(1, np.sqrt(degree), out=scale, where=degree > 0)

    # One row per class (each a contiguous vector over the items): products one class at a
    # time are 1.6x faster than one product of an (items x classes) block, measured at 1M.
    Y = np.zeros((n_classes, n_items), dtype=np.float32)
    Y[codes, rows[:len(codes)]] = 1
    if prior is not None:
        Y[:, rows[len(codes):]] = np.asarray(prior, dtype=np.float32).T

    def product(P, out, c):  # out[c] = S P[c], S = D^-1/2 W D^-1/2 over the items inside
        np.multiply(scale, W @ (scale * P[c]), out=out[c])

    with ThreadPoolExecutor(THREADS) as threads:
        def system(P, out):  # out = (I - alpha S) P, the classes on THREADS threads
            list(threads.map(lambda c: product(P, out, c), range(len(P))))
            out *= -alpha
            out += P

        return _solve(system, Y, max_iter=graph.max_steps if max_iter is None else max_iter,
                      tol=tol)[:, rows].T.astype(np.float64)


def _solve(system, Y, *, max_iter: int, tol: float) -> np.ndarray:
    """Conjugate gradients on system(F) = Y (symmetric positive definite), one class per row
    of F, in place on a few buffers (at 1,000,000 items each vector operation is 40 MB);
    returns F's columns as distributions once they move by no more than `tol` over
    CHECK_EVERY steps, or after `max_iter` steps."""
    F, R, P = np.zeros_like(Y), Y.copy(), Y.copy()  # the start, F = 0, leaves all of Y as residual
    AP, scratch = np.empty_like(Y), np.empty_like(Y)
    rr = _dots(R, R)
    shown = _distributions(F)
    for step_number in range(1, max_iter + 1):
        system(P, AP)
        step = (rr / np.maximum(_dots(P, AP), 1e-30)).astype(np.float32)[:, None]
        F += np.multiply(step, P, out=scratch)
        R -= np.multiply(step, AP, out=scratch)
        rr, previous = _dots(R, R), rr
        if step_number % CHECK_EVERY == 0 or not rr.any():
            now = _distributions(F)
            moved, shown = float(np.abs(now - shown).max()), now
            if moved <= tol or not rr.any():  # the row distributions no longer move
                return shown
        P *= (rr / np.maximum(previous, 1e-30)).astype(np.float32)[:, None]
        P += R
    return _distributions(F)


def _distributions(F: np.ndarray) -> np.ndarray:
    """Each item's column of F (classes x items) as a distribution over classes; uniform
    where it is all zero (the labels never reached it). The exact solution is never
    negative: an iterate's small negative entries count as zero. (In place on one copy:
    at 1,000,000 items the obvious np.where version took 0.1 s.)"""
    out = np.maximum(F, 0)
    total = out.sum(axis=0)
    reached = total > 1e-12
    np.divide(1, total, out=total, where=reached)
    out *= total
    out[:, ~reached] = 1 / len(F)
    return out


def _dots(A, B) -> np.ndarray:
    """Row-wise dot products (BLAS: at 1,000,000 items 2.7 ms for 10 rows, where a float64
    einsum took 12 ms; they agree to 3e-7 relative)."""
    return np.array([np.dot(a, b) for a, b in zip(A, B)], dtype=np.float64)
