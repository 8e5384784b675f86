"""A round ranks at most `Ranker.max_ranked` unlabeled items (a seeded random sample); the
others follow in the role "random", and each says why it is shown (issue 20: rounds at
millions of items)."""

import numpy as np
import pytest

from workbench import Session, datasets, logistic_regression
from workbench.learn.queue import AUDIT, RANDOM
from workbench.loop.ranking import Ranker


@pytest.fixture(scope="module")
def pool():
    return datasets.digits().subset(np.arange(400))


def ranked_session(pool, path, monkeypatch, max_ranked=60):
    monkeypatch.setattr(Ranker, "max_ranked", max_ranked)
    session = Session(pool, path, learner=logistic_regression(), watch=False, audit_every=10)
    session.label_many({i: int(pool.true_label(i)) for i in pool.item_ids[:40]})
    session.retrain()
    return session


def entries(session):
    queue = session.serving.queue
    return [queue.entry(k) for k in range(len(queue))]


def test_a_round_ranks_a_sample_and_serves_the_rest_at_random(pool, tmp_path, monkeypatch):
    session = ranked_session(pool, tmp_path / "a", monkeypatch)
    got = entries(session)
    roles = [role for _, role, _ in got]
    strategy = session.strategy_name
    assert roles.count(strategy) == 60
    assert RANDOM in roles and AUDIT in roles
    # the ranked sample comes first, with scores; the rest after it, without
    ranked = [k for k, role in enumerate(roles) if role == strategy]
    assert max(ranked) < min(k for k, role in enumerate(roles) if role == RANDOM)
    assert all(score is not None for _, role, score in got if role == strategy)
    assert all(score is None for _, role, score in got if role == RANDOM)
    # every unlabeled item is in the queue exactly once
    positions = [p for p, _, _ in got]
    labeled = set(session.pool.positions(list(session.labels)))
    assert len(positions) == len(set(positions)) and set(positions) == set(range(len(pool))) - labeled
    # a random item says why it is shown
    position = next(p for p, role, _ in got if role == RANDOM)
    item = session.ranker.queue_item(position, RANDOM, None)
    assert "ranking covered a random 60 of the unlabeled items" in item.reason
    # and a second session on the same labels ranks the same sample in the same order
    again = ranked_session(pool, tmp_path / "b", monkeypatch)
    assert entries(again) == got
    session.close()
    again.close()


def test_pools_up_to_the_limit_are_ranked_whole(pool, tmp_path, monkeypatch):
    session = ranked_session(pool, tmp_path / "c", monkeypatch, max_ranked=10_000)
    assert RANDOM not in [role for _, role, _ in entries(session)]
    session.close()
