"""The labeling queue: the order items are shown in, and the role each one is shown in.

A queue is rebuilt after every training round from the strategy's ranking of the
unlabeled items. Every item sits in it at most once, with exactly one role: the strategy
that ranked it, "cold-start" before the first model, or "audit".

Audit items measure accuracy honestly when there is no held-out test split. Which items
may be audited is a property of the item, fixed before any strategy looks at the pool: an
item belongs to the audit reserve when a stable hash of its id falls in the lowest
1/`audit_every` of the range. Strategies never rank reserve items, and every
`audit_every`-th slot of the queue serves the next reserve item (in hash order), so the
audit labels are a uniform random sample that no strategy influenced. Every session on the
same pool agrees on the reserve, whatever its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

AUDIT = "audit"
COLD_START = "cold-start"


@dataclass(frozen=True)
class QueueItem:
    """One item to show: where it is, the role it is shown in (`strategy`), why, and what
    the model thinks of it."""

    item_id: str
    position: int
    strategy: str
    score: float | None
    suggestion: object | None
    confidence: float | None
    reason: str


class Queue:
    """Ranked positions consumed from the front. `head` skips the done prefix so that
    finding the next items costs O(k), not O(labels since the last retrain)."""

    def __init__(self, positions, roles: list[str], scores: list):
        self.positions = np.asarray(positions, dtype=np.int64).tolist()
        if len(set(self.positions)) != len(self.positions):
            raise ValueError("a queue holds every item at most once")
        if not len(roles) == len(scores) == len(self.positions):
            raise ValueError(f"queue of {len(self.positions)} positions got {len(roles)} roles "
                             f"and {len(scores)} scores")
        self.roles = list(roles)
        self.scores = list(scores)
        self.head = 0

    def __len__(self) -> int:
        return len(self.positions)

    def upcoming(self, is_done, is_blocked=None):
        """Yield (position, role, score) of entries neither done nor blocked, in order.

        Done entries (labeled, skipped) at the front are passed for good; blocked ones (shown
        by another session right now) are passed over but may come back."""
        at_front = True
        for k in range(self.head, len(self.positions)):
            position = self.positions[k]
            if is_done(position):
                if at_front:
                    self.head = k + 1
                continue
            if is_blocked is not None and is_blocked(position):
                at_front = False
                continue
            at_front = False
            yield position, self.roles[k], self.scores[k]

    def rewind(self) -> None:
        """After an undo an earlier entry may be pending again."""
        self.head = 0


def audit_reserve(item_ids: pd.Index, audit_every: int | None) -> np.ndarray:
    """Positions of the items that audit slots may serve, in the order they are served."""
    if not audit_every:
        return np.empty(0, dtype=np.int64)
    if audit_every < 2:
        raise ValueError(f"audit_every must be at least 2 (every k-th item is an audit item), "
                         f"got {audit_every}")
    # pandas' hash is keyed by a fixed constant: the same id hashes the same everywhere.
    hashes = pd.util.hash_pandas_object(pd.Index(item_ids), index=False).to_numpy()
    chosen = np.flatnonzero(hashes < np.uint64(2**64 // audit_every))
    return chosen[np.argsort(hashes[chosen], kind="stable")].astype(np.int64)


def overlap_items(item_ids: pd.Index, share: float) -> set[str]:
    """The items served to two annotators (for agreement): a stable, uniform `share` of the
    pool, chosen by a hash of the id with another key than the audit reserve's."""
    if not 0 <= share <= 1:
        raise ValueError(f"overlap must be a share of the pool between 0 and 1, got {share!r}")
    if not share:
        return set()
    hashes = pd.util.hash_pandas_object(pd.Index(item_ids), index=False,
                                        hash_key="workbench-overlp").to_numpy()
    return set(pd.Index(item_ids)[hashes < np.uint64(int(2**64 * share) - 1)])


def build_queue(ranked, scores, role: str, *, audit=None, audit_every: int | None = None) -> Queue:
    """`ranked`: positions best first (none of them audit reserve items); `audit`: reserve
    positions still to serve, in order. Every `audit_every`-th slot takes the next audit item;
    audit items left over when the ranking runs out come last."""
    ranked = np.asarray(ranked, dtype=np.int64)
    scores = [None] * len(ranked) if scores is None else [float(s) for s in scores]
    audit = np.empty(0, dtype=np.int64) if audit is None or not audit_every else np.asarray(audit)
    if np.isin(ranked, audit).any():
        raise ValueError("audit items must not also be ranked by the strategy")
    # The j-th audit item takes slot j * audit_every, in front of ranked item j * (audit_every
    # - 1), as long as a ranked item follows it; laid out with arrays, not a loop, because a
    # pool of a million items is re-ranked every round.
    n_ranked, every = len(ranked), audit_every or 0
    if not every or not n_ranked or not len(audit):
        n_audit = 0
    elif every == 1:
        n_audit = min(len(audit), n_ranked)
    else:
        n_audit = min(len(audit), (n_ranked - 1) // (every - 1))
    is_audit = np.zeros(n_ranked + n_audit, dtype=bool)
    if n_audit:
        j = np.arange(1, n_audit + 1)
        is_audit[j * every - 1 if every > 1 else 2 * j - 2] = True
    positions = np.empty(len(is_audit), dtype=np.int64)
    positions[is_audit], positions[~is_audit] = audit[:n_audit], ranked
    out_scores = np.full(len(is_audit), None, dtype=object)
    out_scores[~is_audit] = scores
    rest = len(audit) - n_audit
    roles = [AUDIT if a else role for a in is_audit.tolist()]
    return Queue(np.concatenate([positions, audit[n_audit:]]), roles + [AUDIT] * rest,
                 out_scores.tolist() + [None] * rest)


def diverse_positions(X: np.ndarray, n: int, *, seed: int = 0, sample: int = 5000) -> np.ndarray:
    """`n` items spread over the data: the item nearest each k-means centroid.
    K-means runs on a random sample so a cold start stays fast on big pools."""
    from sklearn.cluster import KMeans

    if X.ndim >= 3 and np.prod(X.shape[1:]) > 1024:
        # Photo-sized images: k-means on every pixel cost seconds per 1,000 dimensions; a
        # strided view of at most 16 x 16 pixels is plenty to spread a first batch.
        step_h, step_w = -(-X.shape[1] // 16), -(-X.shape[2] // 16)
        X = X[:, ::step_h, ::step_w]
    flat = X.reshape(len(X), -1)
    n = min(n, len(flat))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    candidates = rng.choice(len(flat), size=min(sample, len(flat)), replace=False)
    km = KMeans(n_clusters=n, n_init=1, random_state=seed).fit(flat[candidates])
    distances = km.transform(flat[candidates])  # (candidates, n)
    chosen: list[int] = []
    for c in range(n):
        for j in np.argsort(distances[:, c]):
            if int(candidates[j]) not in chosen:
                chosen.append(int(candidates[j]))
                break
    return np.asarray(chosen, dtype=np.int64)
