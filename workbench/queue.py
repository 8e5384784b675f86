"""The labeling queue: the order items are shown in, and why each one is there.

A queue is rebuilt after every training round from the strategy's ranking of the
unlabeled items. When no held-out test split exists, every `audit_every`-th slot holds
a uniformly random item instead: its label is kept out of training and measures the
model's accuracy on data the strategy did not choose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QueueItem:
    """One item to show: where it is, why it was picked and what the model thinks."""

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

    def __init__(self, positions: np.ndarray, strategies: list[str], scores: list):
        self.positions = np.asarray(positions, dtype=np.int64).tolist()
        self.strategies = strategies
        self.scores = scores
        self.head = 0

    def __len__(self) -> int:
        return len(self.positions)

    def upcoming(self, is_done):
        """Yield (position, strategy, score) of entries not done, in order."""
        at_front = True
        for k in range(self.head, len(self.positions)):
            position = self.positions[k]
            if is_done(position):
                if at_front:
                    self.head = k + 1
                continue
            at_front = False
            yield position, self.strategies[k], self.scores[k]

    def rewind(self) -> None:
        """After an undo an earlier entry may be pending again."""
        self.head = 0


def rank_queue(order, scores, strategy: str, *, audit_every: int | None, n_items: int, rng) -> Queue:
    """`order`: positions best first. Returns the queue with audit items interleaved."""
    order = np.asarray(order, dtype=np.int64)
    scores = [None] * len(order) if scores is None else list(np.asarray(scores, dtype=float))
    if not audit_every or len(order) == 0:
        return Queue(order, [strategy] * len(order), scores)
    audit = np.random.default_rng(rng).permutation(order)  # random among the same candidates
    positions, strategies, out_scores = [], [], []
    a = 0
    for k, (p, s) in enumerate(zip(order.tolist(), scores), start=1):
        if k % audit_every == 0 and a < len(audit):
            positions.append(int(audit[a]))
            strategies.append("audit")
            out_scores.append(None)
            a += 1
        positions.append(p)
        strategies.append(strategy)
        out_scores.append(s)
    return Queue(np.asarray(positions, dtype=np.int64), strategies, out_scores)


def diverse_positions(X: np.ndarray, n: int, *, seed: int = 0, sample: int = 5000) -> np.ndarray:
    """`n` items spread over the data: the item nearest each k-means centroid.
    K-means runs on a random sample so a cold start stays fast on big pools."""
    from sklearn.cluster import KMeans

    flat = X.reshape(len(X), -1)
    n = min(n, len(flat))
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
