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

from workbench.data.unique import unique_ints

AUDIT = "audit"
COLD_START = "cold-start"
RANDOM = "random"  # the role of items past a ranked sample: served in a random order


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
    finding the next items costs O(k), not O(labels since the last retrain).

    Held in numpy arrays, not Python lists: a round builds the next queue in the background
    while the person labels, and a list of a million positions (or a set of them, to check
    for duplicates) is built in one call that holds the interpreter lock for tens of
    milliseconds, so every `next()` meanwhile waited for it; numpy's sort lets go of it.
    `roles`: a role per entry, or with `role_names`, each entry's index into them."""

    def __init__(self, positions, roles, scores, *, role_names: list[str] | None = None):
        self.positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        n = len(self.positions)
        if n and unique_ints(self.positions).size != n:
            raise ValueError("a queue holds every item at most once")
        if role_names is None:
            role_names = list(dict.fromkeys(roles))
            index = {name: code for code, name in enumerate(role_names)}
            roles = [index[r] for r in roles]
        self.role_names = list(role_names)
        self.role_codes = np.asarray(roles, dtype=np.int16).reshape(-1)
        if scores is None:
            scores = np.full(n, np.nan)
        elif not isinstance(scores, np.ndarray):
            scores = np.array([np.nan if v is None else v for v in scores], dtype=np.float64)
        self.scores = np.asarray(scores, dtype=np.float64).reshape(-1)  # NaN: no score
        if not len(self.role_codes) == len(self.scores) == n:
            raise ValueError(f"queue of {n} positions got {len(self.role_codes)} roles "
                             f"and {len(self.scores)} scores")
        self.head = 0

    def __len__(self) -> int:
        return len(self.positions)

    def entry(self, k: int) -> tuple[int, str, float | None]:
        """(position, role, score) of the k-th entry."""
        score = float(self.scores[k])
        return int(self.positions[k]), self.role_names[self.role_codes[k]], None if score != score else score

    def upcoming(self, is_done, is_blocked=None):
        """Yield (position, role, score) of entries neither done nor blocked, in order.

        Done entries (labeled, skipped) at the front are passed for good; blocked ones (shown
        by another session right now) are passed over but may come back."""
        at_front = True
        positions = self.positions
        for k in range(self.head, len(positions)):
            position = int(positions[k])
            if is_done(position):
                if at_front:
                    self.head = k + 1
                continue
            if is_blocked is not None and is_blocked(position):
                at_front = False
                continue
            at_front = False
            yield self.entry(k)

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


def build_queue(ranked, scores, role: str, *, audit=None, audit_every: int | None = None,
                rest=None) -> Queue:
    """`ranked`: positions best first (none of them audit reserve items); `audit`: reserve
    positions still to serve, in order; `rest`: positions served after the ranked ones, in
    the role "random" (the unlabeled items a strategy did not rank, in a random order).
    Every `audit_every`-th slot takes the next audit item; audit items left over when the
    ranking runs out come last."""
    scores = np.full(len(ranked), np.nan) if scores is None else np.asarray(scores, dtype=np.float64)
    n_rest = 0 if rest is None else len(rest)
    if n_rest:
        ranked = np.concatenate([np.asarray(ranked, dtype=np.int64), np.asarray(rest, dtype=np.int64)])
        scores = np.concatenate([scores, np.full(n_rest, np.nan)])
    ranked = np.asarray(ranked, dtype=np.int64)
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
    out_scores = np.full(len(is_audit), np.nan)
    out_scores[~is_audit] = scores
    left = len(audit) - n_audit
    roles = np.concatenate([is_audit, np.ones(left, dtype=bool)]).astype(np.int16)  # 1: audit
    if n_rest:  # 2: past the ranked ones
        unranked = np.zeros(n_ranked, dtype=bool)
        unranked[n_ranked - n_rest:] = True
        roles[np.flatnonzero(~is_audit)[unranked]] = 2
    return Queue(np.concatenate([positions, audit[n_audit:]]), roles,
                 np.concatenate([out_scores, np.full(left, np.nan)]), role_names=[role, AUDIT, RANDOM])


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
