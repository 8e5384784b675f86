"""The data map of a spans or a boxes session (workbench/ui/map_parts.py): an item's label and
the model's prediction are the classes among its parts, its uncertainty is the measure the
queue ranks by, its suspicion the worst of its parts', and a rectangle queues items as it
does for classes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench import Session
from workbench.data.box_digits import box_digits
from workbench.data.entity_texts import entities
from workbench.learn import box_detector, token_tagger
from workbench.learn.box_detector import BoxDetector
from workbench.ui.data_map import data_map, queue_from


def points(chart) -> pd.DataFrame:
    meta = chart.chart.usermeta["workbench"]
    return pd.DataFrame(chart.chart.data.values).rename(columns={meta["x"]: "x", meta["y"]: "y"})


def classes_of(session, parts) -> str:
    names = [c for c in session.class_names if c in {str(p.label) for p in parts}]
    return ", ".join(names) or "(none)"


@pytest.fixture(params=["spans", "boxes"])
def session(request, tmp_path):
    if request.param == "spans":
        pool, _ = entities(150, n_test=10, seed=0)
        session = Session(pool, tmp_path / "s", watch=False, strategy="mean_token_entropy")
    else:
        pool, _ = box_digits(120, n_test=10, seed=0)
        session = Session(pool, tmp_path / "s", watch=False, learner=BoxDetector(steps=40))
    yield session
    session.close()


def test_a_parts_map_shows_the_classes_of_each_items_parts_and_the_queues_measure(session):
    pool = session.pool
    with pytest.raises(ValueError, match="needs a trained model"):
        data_map(session, color="uncertainty")
    for item_id in pool.item_ids[:20]:
        session.label(item_id, pool.true_label(item_id))
    session.label(pool.item_ids[20], [])  # an item with no part at all
    session.retrain()
    labels = points(data_map(session)).set_index("item_id")["label"]
    for item_id, value in session.labels.items():
        assert labels[item_id] == classes_of(session, value)
    assert labels[pool.item_ids[20]] == "(none)" and (labels.drop(list(session.labels)) == "unlabeled").all()

    chart = data_map(session, color="uncertainty")
    data = points(chart)
    positions = pool.positions(data["item_id"])
    measures = np.asarray(session.rounds.model.query_proba[positions])
    # the session's strategy is a column of the learner's uncertainty: the map shows that one
    names = token_tagger.UNCERTAINTY if session.task == "spans" else box_detector.UNCERTAINTY
    column = names.index(session.strategy_name)
    np.testing.assert_allclose(data["uncertainty"], measures[:, column], rtol=1e-5)
    assert chart.spec["encoding"]["color"]["title"] == session.strategy_name
    # one colour, one value, whatever the items shown: from 0 to the most the measure can be
    # (ln 7 nats for 3 labels' BIO tags); the box entropy, a sum over candidates, from 0 up
    scale = chart.spec["encoding"]["color"]["scale"]
    assert scale == ({"domain": [0, pytest.approx(np.log(7))], "scheme": "viridis"} if session.task == "spans"
                     else {"domainMin": 0, "scheme": "viridis"})
    json.dumps(chart.spec, allow_nan=False)

    suspects = session.suspects()  # a row per part, scored in "suspicion"
    worst = suspects.groupby("item_id")["suspicion"].max()
    shown = points(data_map(session, color="suspicion")).set_index("item_id")["suspicion"]
    np.testing.assert_allclose(shown[worst.index], worst.to_numpy())

    from workbench.loop import suggest_parts
    predicted = points(data_map(session, color="prediction"))
    positions = pool.positions(predicted["item_id"])
    suggestions, _ = suggest_parts.proposals(session, session.rounds.model, positions)
    assert predicted["prediction"].tolist() == [classes_of(session, s) for s in suggestions]


def test_an_items_suspicion_is_its_worst_parts_and_a_rectangle_queues_as_for_classes(session, monkeypatch):
    pool = session.pool
    a, b = pool.item_ids[:2]
    # suspects() of parts: a row per part; the map shows each item's worst
    table = pd.DataFrame({"item_id": [a, a, b], "suspicion": [0.2, 0.9, 0.4], "kind": ["given"] * 3})
    monkeypatch.setattr(Session, "suspects", lambda self, k=None: table)
    data = points(data_map(session, color="suspicion")).set_index("item_id")
    assert data.loc[[a, b], "suspicion"].tolist() == [0.9, 0.4]
    assert data.drop([a, b])["suspicion"].isna().all()
    chosen = list(data.index[:5])
    assert queue_from(session, chosen) == chosen
    assert [q.item_id for q in session.peek(5)] == chosen


def test_a_legend_quotes_class_names_that_would_read_as_several_or_none(tmp_path):
    import workbench

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    sets = [["a, b"], ["a", "b"], [], ["(none)"]] * 10
    pool = workbench.Pool.from_arrays(X, sets, task="multi_label")
    session = Session(pool, tmp_path / "m", watch=False)
    session.label_many({pool.item_ids[i]: sets[i] for i in range(8)})
    labels = points(data_map(session)).set_index("item_id")["label"]
    shown = [labels[pool.item_ids[i]] for i in range(4)]
    assert shown == ['"a, b"', '"a", "b"', "(none)", '"(none)"'] and len(set(shown)) == 4
    session.close()
    plain = workbench.Pool.from_arrays(X, [["a", "b"], ["c"], []] * 13 + [["c"]], task="multi_label")
    session = Session(plain, tmp_path / "p", watch=False)
    session.label_many({plain.item_ids[i]: plain.true_label(plain.item_ids[i]) for i in range(3)})
    assert points(data_map(session)).set_index("item_id")["label"][list(plain.item_ids[:3])].tolist() == [
        "a, b", "c", "(none)"]
    session.close()
    from workbench.ui.map_parts import join_classes

    assert join_classes([""], ["", "a"]) == '""' and join_classes([], ["", "a"]) == "(none)"
