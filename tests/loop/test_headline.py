"""Honest headline numbers (issue 18 item 1): every accuracy carries its Wilson interval and
sample size, no point figure before the interval is narrower than +-10 points, and on a pool
without a test split the audit labels come at a pace that makes the estimate useful."""

import numpy as np
import pytest

from workbench import Session, datasets, logistic_regression
from workbench.learn.metrics import wilson
from workbench.loop.ranking import EARLY_AUDIT_EVERY


@pytest.fixture(scope="module")
def pool():
    return datasets.digits().subset(np.arange(400))


def label_served(session, pool, n):
    for _ in range(n):
        q = session.next()
        session.label(q.item_id, pool.true_label(q.item_id))


def test_a_few_audit_labels_give_an_interval_not_a_figure(pool, tmp_path):
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False)
    roles = [q.strategy for q in session.peek(4 * EARLY_AUDIT_EVERY)]
    assert roles.count("audit") == 4  # every 4th item, not every 10th, while the estimate is loose
    label_served(session, pool, 30)
    session.retrain()
    history = session.history
    columns = list(history.columns)
    at = columns.index("n_eval")
    assert columns[at + 1: at + 3] == ["accuracy_low", "accuracy_high"]
    row = history.iloc[-1]
    assert row["n_eval"] == 7 and "audit" in row["eval_on"]
    assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx(
        wilson(round(row["accuracy"] * 7), 7))
    headline = session.model_state()["accuracy_headline"]
    assert headline.startswith("accuracy: not enough audit labels yet (7 of ~"), headline
    assert f"{row['accuracy']:.1%}" not in headline
    session.close()


def test_the_audit_pace_slows_once_the_estimate_is_sure(pool, tmp_path):
    session = Session(pool, tmp_path / "s", learner=logistic_regression(), watch=False)
    assert session.ranker.audit_pace({"accuracy": 1.0, "n_eval": 5}) == EARLY_AUDIT_EVERY
    assert session.ranker.audit_pace({"accuracy": 0.9, "n_eval": 200}) == session.audit_every == 10
    assert session.ranker.audit_pace({"accuracy": float("nan"), "n_eval": 2}) == EARLY_AUDIT_EVERY
    session.close()
    fixed = Session(pool, tmp_path / "f", learner=logistic_regression(), watch=False, audit_every=10)
    assert fixed.ranker.audit_pace({"accuracy": 1.0, "n_eval": 5}) == 10  # asked for: kept
    assert [q.strategy for q in fixed.peek(20)].count("audit") == 2
    fixed.close()


def test_a_test_split_gives_a_figure_with_its_interval(tmp_path):
    digits = datasets.digits()
    train, test = digits.subset(np.arange(300)), digits.subset(np.arange(300, 800))
    session = Session(train, tmp_path / "t", learner=logistic_regression(), watch=False,
                      test=test)
    session.label_many({i: train.true_label(i) for i in train.item_ids[:60]})
    session.retrain()
    row = session.history.iloc[-1]
    low, high = wilson(round(row["accuracy"] * 500), 500)
    assert session.model_state()["accuracy_headline"] == (
        f"accuracy {row['accuracy']:.1%} (95% CI {low:.1%}–{high:.1%}, 500 test items)")
    session.close()
