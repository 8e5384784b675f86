"""Duplicates in a pool, and the ones that leak training labels into the evaluation.

    table = duplicates(session)                  # one row per duplicate pair
    table[table.leakage]                         # evaluation items that copy a training label

Two kinds of duplicate:
- "exact": the same raw features (the bytes of the item's row of `pool.X`), or, in a text
  pool, the same text once normalised (Unicode NFKC, case-folded, whitespace collapsed).
  Exact duplicates form groups; each member is listed once, against the group's
  representative: its training item if it has one, else its audit item, else its first item.
- "near": two items (two groups of exact duplicates) whose features where the learner looks
  (`session.inputs.features()`: the pool's representation for the default learner) are
  within `threshold` of each other (Euclidean).

The default threshold is a quarter of the median distance from an item to its nearest other
item (`NEAR_FRACTION`): a near duplicate is then far closer than items usually are to their
closest neighbour. On the 1,797 digits (the representation the default learner sees) the
closest genuine pair lies at 0.42 of the median, so the default finds none on the clean
digits, while a copy with 2% pixel noise lies at most at 0.19 and one with 3% at 0.27. The
median is measured on at most 1,000 items (`MEDIAN_SAMPLE`; their nearest neighbours are
searched among all items), the pairs within the threshold among all of them.

Leakage: the accuracy a session reports is measured on data the queue did not choose, its
held-out test split (`session.test`) or else its audit items. An evaluation item that
duplicates an item whose label trains the model is graded on a copy of its own answer:
such a row has `leakage=True`. Evaluation items are the test split's rows (named
"test-<row>"; compared with the pool by the bytes of their raw features and by distance
between their encoded features, `session.inputs.test_features`) and, without a test split,
the audit reserve's items and the labels given in the audit role. A test row or audit item
that duplicates an unlabeled item is listed with `leakage=False`: labeling that item would
make it leak.

Fast: exact groups by sorting row bytes. Near pairs: read from the representation's
neighbour graph where it has one (pools up to 50,000 items, each item's 10 nearest, exact);
else every pair compared in pools of up to ~4,500 items; else proposed by a forest of
random-projection trees and each checked (`_forest_pairs`: approximate, it found every
planted pair closer than half the threshold and 99.5% of those up to it). 100,000 Gaussian
items of 64 dimensions take 4.4-5 s on two busy cores (about 1 s of it the median, 3 s the
forest, 0.3 s the exact groups); the 1,797 digits 0.3 s.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from workbench.data.unique import unique_ints
from workbench.learn.queue import AUDIT

NEAR_FRACTION = 0.25   # default threshold: this share of the median nearest-neighbour distance
MEDIAN_SAMPLE = 1000   # items whose nearest neighbour measures the median
FOREST_TREES = 10      # random-projection trees that propose near pairs in big pools
BRUTE_MAX_PAIRS = 2e7  # below this many pairs, distances are computed for all of them
COLUMNS = ["item_id", "duplicate_of", "kind", "distance", "label", "duplicate_label",
           "item_in", "duplicate_in", "leakage"]
TRAIN, AUDIT_ITEM, UNLABELED, TEST = "train", "audit", "unlabeled", "test"


def duplicates(session, *, near: bool = True, threshold: float | None = None) -> pd.DataFrame:
    """Exact and near duplicates among the session's pool items and test rows.

    One row per duplicate: `item_id` duplicates `duplicate_of` (always a pool item);
    `kind` "exact" or "near"; `distance` between their features where the learner looks;
    `label`, `duplicate_label`: their current labels (a test row's: its ground truth; None
    when unlabeled); `item_in`, `duplicate_in`: "train" (labeled, trains the model), "audit"
    (evaluates it), "test" (a row of the test split) or "unlabeled"; `leakage`: an
    evaluation item duplicating a training item. Rows with leakage come first, then exact
    duplicates, then the closest pairs.

    `near=False` lists exact duplicates only. `threshold`: the largest distance of a near
    duplicate, in the learner's feature space; None chooses `NEAR_FRACTION` of the median
    nearest-neighbour distance (see the module doc). The table's `attrs` hold the
    `threshold` used and the `median_nn_distance` it came from (NaN when given).
    """
    if threshold is not None and not threshold >= 0:
        raise ValueError(f"threshold must be a distance >= 0 (or None to choose one), got {threshold!r}")
    pool = session.pool
    n = len(pool)
    ids = np.asarray(pool.item_ids, dtype=object)
    features = _flat(session.inputs.features())
    where = _where(session)
    labels = session.labels
    label_of = np.empty(len(ids), dtype=object)  # filled, not built: sets of one size would make it 2-d
    label_of[:] = [labels.get(i) for i in ids]
    X_test, y_test = session.test if session.test is not None else (None, None)
    has_test = X_test is not None and len(X_test) > 0
    cached: list[np.ndarray] = []

    def test_features() -> np.ndarray:  # the test rows where the learner looks, computed once
        if not cached:
            cached.append(_flat(session.inputs.test_features(X_test)))
        return cached[0]

    # exact: groups of equal row bytes (pool and test rows together), and of equal texts
    rows = [_flat(pool.X)]
    if has_test and np.shape(X_test)[1:] == pool.X.shape[1:]:
        rows.append(_flat(np.asarray(X_test, dtype=pool.X.dtype)))
    key = _row_keys(np.concatenate(rows) if len(rows) > 1 else rows[0])
    group = _groups(key[:n], _texts(pool))
    rep = _representatives(group, where)             # group -> position of its representative
    test_group = _test_groups(key, n, group) if len(rows) > 1 else None

    out = [_exact_rows(group, rep)]
    if test_group is not None:
        matched = np.flatnonzero(test_group >= 0)
        out.append((matched, rep[test_group[matched]], "exact", True))

    median = threshold_used = np.nan
    if near and n >= 2:
        unique = rep                                 # one item per exact group
        if threshold is None:
            median = _median_nn(features[unique], seed=getattr(session, "seed", 0))
        threshold_used = NEAR_FRACTION * median if threshold is None else float(threshold)
        if threshold_used > 0 or threshold is not None:
            a, b = _near_pool_pairs(session, features, group, rep, threshold_used)
            # the item is the one that is not the training one (for leakage), else the later one
            swap = (where[a] == TRAIN) & (where[b] != TRAIN) | (
                (where[a] == TRAIN) == (where[b] == TRAIN)) & (a < b)
            a, b = np.where(swap, b, a), np.where(swap, a, b)
            out.append((a, b, "near", False))
            if has_test:
                t, u = _close_pairs(test_features(), threshold_used, features[unique])
                u = unique[u]
                if test_group is not None:  # already listed as exact
                    keep = group[u] != test_group[t]
                    t, u = t[keep], u[keep]
                out.append((t, u, "near", True))
    elif threshold is not None:
        threshold_used = float(threshold)

    frames = []
    for items, dups, kind, from_test in out:
        if not len(items):
            continue
        items, dups = np.asarray(items, dtype=np.int64), np.asarray(dups, dtype=np.int64)
        if from_test:
            item_feats = test_features()[items]
            frame = pd.DataFrame({
                "item_id": [f"test-{t}" for t in items], "duplicate_of": ids[dups], "kind": kind,
                "label": [_plain(v) for v in np.asarray(y_test, dtype=object)[items]],
                "item_in": TEST})
        else:
            item_feats = features[items]
            frame = pd.DataFrame({"item_id": ids[items], "duplicate_of": ids[dups], "kind": kind,
                                  "label": label_of[items], "item_in": where[items]})
        frame["distance"] = np.linalg.norm(item_feats - features[dups], axis=1).astype(float)
        frame["duplicate_label"] = label_of[dups]
        frame["duplicate_in"] = where[dups]
        frame["leakage"] = frame["item_in"].isin([TEST, AUDIT_ITEM]).to_numpy() & (where[dups] == TRAIN)
        frames.append(frame)
    table = (pd.concat(frames, ignore_index=True) if frames
             else pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS}))
    table["leakage"] = table["leakage"].astype(bool)
    table["distance"] = table["distance"].astype(float)
    table = table[COLUMNS]
    if len(table):
        order = np.lexsort((table["item_id"].astype(str).to_numpy(), table["distance"].to_numpy(),
                            (table["kind"] != "exact").to_numpy(), ~table["leakage"].to_numpy()))
        table = table.iloc[order].reset_index(drop=True)
    table.attrs.update(threshold=float(threshold_used), median_nn_distance=float(median),
                       near_fraction=NEAR_FRACTION if threshold is None else None, n_items=n,
                       n_test=0 if not has_test else len(X_test))
    return table


# -- who is where ---------------------------------------------------------------------------
def _where(session) -> np.ndarray:
    """Per pool position: "train" (a label that trains the model), "audit" (a label given in
    the audit role, or an unlabeled item of the audit reserve, when the audit is what the
    session is scored on) or "unlabeled" (skipped items too)."""
    pool = session.pool
    n = len(pool)
    where = np.full(n, UNLABELED, dtype=object)
    audited = session.test is None and bool(getattr(session, "audit_every", None))
    labels = session.labels
    if audited:
        reserve = np.asarray(session.audit_positions, dtype=np.int64)
        where[reserve] = AUDIT_ITEM
    for item in labels:
        position = pool.position(item)
        where[position] = AUDIT_ITEM if audited and session.role_of(item) == AUDIT else TRAIN
    return where


# -- exact ----------------------------------------------------------------------------------
def _flat(X) -> np.ndarray:
    X = np.asarray(X)
    return np.ascontiguousarray(X.reshape(len(X), -1))


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """A group number per row: equal rows (byte for byte, -0.0 counted as 0.0), equal numbers."""
    rows = np.ascontiguousarray(rows + rows.dtype.type(0)) if rows.dtype.kind == "f" else rows
    if rows.shape[1] == 0:
        return np.zeros(len(rows), dtype=np.int64)
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, inverse = np.unique(as_bytes, return_inverse=True)
    return inverse.ravel().astype(np.int64)


def normalise_text(text) -> str:
    """A text as compared for exact duplicates: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


def _texts(pool) -> np.ndarray | None:
    if pool.kind != "text" or "text" not in pool.items:
        return None
    return pd.factorize(pool.items["text"].map(normalise_text))[0].astype(np.int64)


def _groups(*keys) -> np.ndarray:
    """Group numbers joining items equal under any of the keys (connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys = [k for k in keys if k is not None]
    n = len(keys[0])
    if len(keys) == 1:
        return pd.factorize(keys[0])[0].astype(np.int64)
    src, dst = [], []
    for k in keys:
        first = pd.Series(np.arange(n)).groupby(k).transform("min").to_numpy()
        src.append(np.arange(n))
        dst.append(first)
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _representatives(group: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Per group (numbered 0..G-1): its training item, else its audit item, else its first
    item (the lowest position within each tier)."""
    tier = np.select([where == TRAIN, where == AUDIT_ITEM], [0, 1], 2)
    order = np.lexsort((np.arange(len(group)), tier, group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    rep = np.empty(group.max() + 1, dtype=np.int64)
    rep[group[order][first]] = order[first]
    return rep


def _exact_rows(group: np.ndarray, rep: np.ndarray):
    members = np.flatnonzero(rep[group] != np.arange(len(group)))
    return members, rep[group[members]], "exact", False


def _test_groups(key: np.ndarray, n: int, group: np.ndarray) -> np.ndarray:
    """Per test row, the pool group with the same row bytes (-1: none)."""
    pool_group_of_key = np.full(key.max() + 1, -1, dtype=np.int64)
    pool_group_of_key[key[:n]] = group
    return pool_group_of_key[key[n:]]


def _plain(value):
    return value.item() if hasattr(value, "item") else value


# -- near -----------------------------------------------------------------------------------
def _median_nn(F: np.ndarray, *, seed: int = 0) -> float:
    """The median distance from an item to its nearest other item (of at most
    MEDIAN_SAMPLE items, each searched against all); distances of 0 are skipped."""
    from sklearn.neighbors import NearestNeighbors

    n = len(F)
    if n < 2:
        return float("nan")
    queries = (np.arange(n) if n <= MEDIAN_SAMPLE
               else np.random.default_rng(seed).choice(n, MEDIAN_SAMPLE, replace=False))
    k = min(n, 4)
    dist, index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(F).kneighbors(F[queries])
    dist = np.where((index == queries[:, None]) | (dist <= 0), np.inf, dist)
    nearest = dist.min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    return float(np.median(nearest)) if len(nearest) else 0.0


def _near_pool_pairs(session, features, group, rep, r) -> tuple[np.ndarray, np.ndarray]:
    """Positions (a, b) of the representatives of two exact groups within r of each other.

    Where the representation has a neighbour graph (each item's 10 nearest, exact), the pairs
    are read from it: a pair within r is missed only by an item with more than 10 items
    within r, which is listed with 10 of them. Otherwise one item per group is searched."""
    rep_ = session.inputs.representation() if session.inputs.uses_representation else None
    if rep_ is not None and rep_.has_graph and len(rep_) == len(features):
        k = rep_.neighbors.shape[1]
        i = np.repeat(np.arange(len(features)), k)
        j = rep_.neighbors.ravel().astype(np.int64)
        valid = j >= 0
        i, j = i[valid], j[valid]
        close = np.linalg.norm(features[i] - features[j], axis=1) <= r
        a, b = rep[group[i[close]]], rep[group[j[close]]]
        keys = unique_ints(np.minimum(a, b)[a != b] * len(features) + np.maximum(a, b)[a != b])
        return keys // len(features), keys % len(features)
    unique = rep  # one item per exact group
    a, b = _close_pairs(features[unique], r, seed=getattr(session, "seed", 0))
    return unique[a], unique[b]


def _close_pairs(A: np.ndarray, r: float, B: np.ndarray | None = None, *,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with ||A[i] - B[j]|| <= r (B None: pairs within A, i < j): all of
    them when there are few enough pairs to compare each (BRUTE_MAX_PAIRS), else those a
    random-projection forest proposes (see `_forest_pairs`), each checked."""
    A = np.ascontiguousarray(A, dtype=np.float32)
    other = A if B is None else np.ascontiguousarray(B, dtype=np.float32)
    if len(A) == 0 or len(other) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if float(len(A)) * len(other) <= BRUTE_MAX_PAIRS:
        return _brute_pairs(A, r, None if B is None else other)
    if B is None:
        return _forest_pairs(A, r, seed=seed)
    i, j = _forest_pairs(np.concatenate([A, other]), r, seed=seed)
    cross = (i < len(A)) & (j >= len(A))  # i < j always: an A row with a B row
    return i[cross], j[cross] - len(A)


def _forest_pairs(F: np.ndarray, r: float, *, trees: int = FOREST_TREES, leaf: int = 32,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs within r among F's rows, i < j, proposed by a forest of random-projection trees
    and checked in the full space: each tree splits the items at the median of a random
    direction, level after level, into leaves of `leaf` to `2 * leaf` items, compared with
    each other. Two items far closer than items usually are to their nearest neighbour are
    split apart by a level only when its median falls between them, so they share a leaf of
    most trees. Measured on 100,000 Gaussian 64-d items (where a k-d tree gains nothing) with
    pairs planted at up to the default threshold: 10 trees found every pair closer than half
    the threshold and 99.5% of those up to it, in about 3 s on 2 cores."""
    n, d = F.shape
    rng = np.random.default_rng(seed)
    depth = max(0, int(np.floor(np.log2(max(1.0, n / leaf)))))
    squares = np.einsum("ij,ij->i", F, F)
    index = np.arange(n)
    keys = []
    for _ in range(trees):
        projected = F @ rng.normal(size=(d, depth)).astype(np.float32)
        group = np.zeros(n, dtype=np.int64)
        for level in range(depth):  # split every node at its median along this direction
            order = np.lexsort((projected[:, level], group))
            starts, sizes = _runs(group[order])
            rank = index - np.repeat(starts, sizes)
            upper = np.empty(n, dtype=np.int64)
            upper[order] = rank >= np.repeat(sizes // 2, sizes)
            group = group * 2 + upper
        order = np.argsort(group, kind="stable")
        starts, sizes = _runs(group[order])
        table = np.full((len(starts), sizes.max()), -1, dtype=np.int64)  # leaf x slot -> item
        table[np.repeat(np.arange(len(starts)), sizes), index - np.repeat(starts, sizes)] = order
        upper_triangle = np.triu(np.ones((table.shape[1],) * 2, dtype=bool), 1)
        for first in range(0, len(table), 2048):
            leaves = table[first:first + 2048]
            valid = leaves >= 0
            safe = np.where(valid, leaves, 0)
            X = F[safe]
            sq = np.where(valid, squares[safe], np.inf)
            d2 = sq[:, :, None] + sq[:, None, :] - 2 * (X @ X.transpose(0, 2, 1))
            b, i, j = np.nonzero((d2 <= r * r * (1 + 1e-4) + 1e-6) & upper_triangle)
            a, c = leaves[b, i], leaves[b, j]
            keys.append(np.minimum(a, c) * n + np.maximum(a, c))
    keys = unique_ints(np.concatenate(keys)) if keys else np.empty(0, dtype=np.int64)
    i, j = keys // n, keys % n
    close = np.linalg.norm(F[i] - F[j], axis=1) <= r
    return i[close], j[close]


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of each run of equal values in a sorted array."""
    starts = np.r_[0, np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1]
    return starts, np.diff(np.r_[starts, len(sorted_values)])


def _brute_pairs(A, r, B):
    other = A if B is None else B
    a2 = np.einsum("ij,ij->i", A, A)
    b2 = a2 if B is None else np.einsum("ij,ij->i", other, other)
    out_i, out_j = [], []
    step = max(1, int(4e6 // max(1, len(other))))
    for start in range(0, len(A), step):
        block = A[start:start + step]
        d2 = a2[start:start + step, None] + b2[None, :] - 2 * block @ other.T
        i, j = np.nonzero(d2 <= r * r * (1 + 1e-5) + 1e-6)
        i = i + start
        if B is None:
            keep = j > i
            i, j = i[keep], j[keep]
        exact = np.linalg.norm(A[i] - other[j], axis=1) <= r  # the expansion rounds; check
        out_i.append(i[exact])
        out_j.append(j[exact])
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)
