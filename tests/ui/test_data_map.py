"""The data map: real Altair charts of what the learner sees, and a rectangle drawn on one
turned into the queue (the browser's brush is simulated the way the widget reports it)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import altair as alt
import numpy as np
import pandas as pd
import pytest

from workbench import Pool, Session, datasets, logistic_regression
from workbench.ui import data_map as M
from workbench.ui.data_map import data_map, projection_of, queue_from


@pytest.fixture(scope="module")
def digits():
    return datasets.digits().subset(np.arange(500))


@pytest.fixture
def session(digits, tmp_path):
    s = Session(digits, tmp_path / "s", watch=False)
    yield s
    s.close()


def points(chart: alt.JupyterChart) -> pd.DataFrame:
    """The chart's points, coordinates renamed to x and y."""
    meta = chart.chart.usermeta["workbench"]
    return pd.DataFrame(chart.chart.data.values).rename(columns={meta["x"]: "x", meta["y"]: "y"})


def brush(chart: alt.JupyterChart, x, y) -> dict:
    """Draw a rectangle as the browser reports it (x and y in either order)."""
    meta = chart.chart.usermeta["workbench"]
    value = {meta["x"]: list(map(float, x)), meta["y"]: list(map(float, y))}
    chart._vl_selections = {"brush": {"value": value, "store": []}}
    return value


def label_truth(session, n):
    for item in session.peek(n):
        session.label(item, session.pool.true_label(item.item_id))


def test_the_map_is_an_offline_jupyter_chart_with_a_brush(session, digits):
    chart = data_map(session)
    assert isinstance(chart, alt.JupyterChart) and alt.JupyterChart._is_offline
    spec = chart.spec
    assert {"name": "brush", "select": {"type": "interval"}} in spec["params"]
    assert spec["mark"]["type"] == "circle"
    assert spec["encoding"]["color"]["field"] == "label"
    assert [t["field"] for t in spec["encoding"]["tooltip"]] == ["item_id", "label", "prediction"]
    assert all(t["type"] == "nominal" for t in spec["encoding"]["tooltip"])  # text, not HTML
    data = points(chart)
    assert len(data) == len(digits) and set(data["item_id"]) == set(digits.item_ids)
    assert set(data["label"]) == {"unlabeled"} and set(data["prediction"]) == {"no model yet"}
    assert "all 500 items" in chart.chart.title.text and "t-SNE" in chart.chart.title.text
    assert chart.selections.brush.value == {}
    json.dumps(spec, allow_nan=False)  # what the widget sends: strict JSON
    meta = chart.chart.usermeta["workbench"]
    assert meta["features"] == session.inputs.representation().fingerprint


def test_the_map_projects_what_the_learner_sees(session):
    chart = data_map(session, method="pca")
    features = session.inputs.features()  # the representation, 128-d
    assert features.shape[1] == 128
    centred = features - features.mean(axis=0)
    first = np.linalg.svd(centred, full_matrices=False)[2][0]
    data = points(chart)
    expected = centred[session.pool.positions(data["item_id"])] @ first
    assert abs(np.corrcoef(expected, data["x"])[0, 1]) > 0.999
    assert "PCA map of the pool's representation (128-d)" in chart.chart.title.text


def test_auto_picks_tsne_for_small_pools_and_pca_for_big_ones():
    if importlib.util.find_spec("umap") is not None:
        assert M.resolve_method("auto", 100) == "umap"
    else:
        assert M.resolve_method("auto", 1797) == "tsne"
        assert M.resolve_method("auto", M.TSNE_AUTO_MAX + 1) == "pca"
        with pytest.raises(ValueError, match="umap-learn"):
            M.resolve_method("umap", 100)


def test_recolouring_reuses_the_projection(session, digits, tmp_path):
    first = data_map(session)
    projection = projection_of(session)
    started = time.perf_counter()
    again = data_map(session, color="label")
    assert time.perf_counter() - started < 2  # no new t-SNE (which takes seconds)
    assert projection_of(session) is projection
    pd.testing.assert_frame_equal(points(first), points(again))
    other = Session(digits, tmp_path / "other", watch=False)  # a notebook cell run again
    assert projection_of(other) is projection
    other.close()


def test_colours_by_label_prediction_and_uncertainty(session):
    with pytest.raises(ValueError, match="needs a trained model"):
        data_map(session, color="prediction")
    with pytest.raises(ValueError, match="needs a trained model"):
        data_map(session, color="uncertainty")
    label_truth(session, 30)
    session.retrain()
    by_label = points(data_map(session))
    labeled = by_label.set_index("item_id")["label"]
    truth = {i: str(v) for i, v in session.labels.items()}
    assert labeled[list(truth)].to_dict() == truth
    assert (labeled.drop(list(truth)) == "unlabeled").all()
    chart = data_map(session, color="uncertainty")
    assert chart.spec["encoding"]["color"]["field"] == "uncertainty"
    data = points(chart)
    model = session.rounds.model
    positions = session.pool.positions(data["item_id"])
    expected = 1 - np.asarray(model.query_proba[positions]).max(axis=1)
    np.testing.assert_allclose(data["uncertainty"], expected, rtol=1e-5)
    predicted = points(data_map(session, color="prediction"))
    guesses = [session.class_names[j] for j in np.asarray(model.proba[positions]).argmax(axis=1)]
    assert predicted["prediction"].tolist() == guesses


def test_suspicion_colour(session, monkeypatch):
    ids = list(session.pool.item_ids[:3])
    session.suspects = lambda: pd.DataFrame({"item_id": ids, "score": [0.9, 0.5, 0.1]})
    chart = data_map(session, color="suspicion")
    data = points(chart).set_index("item_id")
    assert data.loc[ids, "suspicion"].tolist() == [0.9, 0.5, 0.1]
    assert data.drop(ids)["suspicion"].isna().all()  # not scored: drawn grey
    assert chart.spec["encoding"]["color"]["condition"]["field"] == "suspicion"
    json.dumps(chart.spec, allow_nan=False)  # unscored items are null, not NaN
    del session.suspects
    monkeypatch.setitem(sys.modules, "workbench.loop.cleaning", None)  # not there
    if not hasattr(Session, "suspects"):
        with pytest.raises(RuntimeError, match="needs workbench.loop.cleaning.suspects"):
            data_map(session, color="suspicion")


def test_big_pools_are_sampled_keeping_every_labeled_item(tmp_path):
    X = np.random.default_rng(0).normal(size=(3000, 16)).astype(np.float32)
    pool = Pool.from_arrays(X, (X[:, 0] > 0).astype(int), name="vectors")
    session = Session(pool, tmp_path / "s", watch=False, learner=logistic_regression())
    labeled = list(pool.item_ids[::100])  # 30 items, most of them outside the fitted sample
    for item in labeled:
        session.label(item, pool.true_label(item))
    chart = data_map(session, sample=400)
    data = points(chart)
    assert len(data) == 400 and set(labeled) <= set(data["item_id"])
    assert np.isfinite(data[["x", "y"]].to_numpy()).all()  # labeled ones placed among the fitted
    assert "400 of 3,000 items shown" in chart.chart.title.text
    assert "pool's features (16-d)" in chart.chart.title.text
    assert projection_of(session, sample=400).method == "tsne" and len(projection_of(
        session, sample=400).fitted) == 400
    assert "PCA" in data_map(session).chart.title.text  # 3,000 items: PCA
    session.close()


def test_a_rectangle_queues_exactly_the_points_inside_it(session):
    chart = data_map(session)
    data = points(chart)
    x0, x1 = np.quantile(data["x"], [0.3, 0.6])
    y0, y1 = np.quantile(data["y"], [0.2, 0.9])
    value = brush(chart, (x1, x0), (y1, y0))  # dragged right to left, bottom to top
    assert chart.selections.brush.value == value
    inside = data[data.x.between(x0, x1) & data.y.between(y0, y1)]
    expected = [i for i in session.pool.item_ids if i in set(inside["item_id"])]
    assert 0 < len(expected) < len(data)
    assert queue_from(session, chart) == expected
    served = session.peek(len(expected) + 5)
    assert [q.item_id for q in served[:len(expected)]] == expected
    assert {q.strategy for q in served[:len(expected)]} == {"map"}
    assert "inside the rectangle" in served[0].reason
    session.label(served[0], session.pool.true_label(served[0].item_id))
    assert session.role_of(served[0].item_id) == "map"
    # the brush's value, or a rectangle keyed x and y, pick the same items
    assert queue_from(session, chart.selections.brush.value) == expected
    assert queue_from(session, chart.selections.brush) == expected
    assert queue_from(session, {"x": [x0, x1], "y": [y0, y1]}, role="cluster") == expected
    assert session.peek(1)[0].strategy == "cluster"


def test_a_list_of_ids_is_queued(session):
    ids = list(session.pool.item_ids[[7, 3, 7]])
    assert queue_from(session, ids) == [ids[0], ids[1]]
    assert [q.item_id for q in session.peek(2)] == [ids[0], ids[1]]
    assert queue_from(session, pd.DataFrame({"item_id": [ids[1]]})) == [ids[1]]


def test_bad_selections_are_refused(session, digits, tmp_path):
    chart = data_map(session)
    with pytest.raises(ValueError, match="drag a rectangle on the map first"):
        queue_from(session, chart)  # nothing drawn yet
    with pytest.raises(ValueError, match="drag a rectangle on the map first"):
        queue_from(session, {})
    data = points(chart)
    brush(chart, (data.x.max() + 1, data.x.max() + 2), (data.y.min(), data.y.max()))
    with pytest.raises(ValueError, match="no items are inside the rectangle"):
        queue_from(session, chart)
    with pytest.raises(ValueError, match=r"not in the pool .*'nope', 'nada'"):
        queue_from(session, [session.pool.item_ids[0], "nope", "nada"])
    with pytest.raises(ValueError, match="pass the JupyterChart"):
        queue_from(session, chart.chart)
    # a map of another pool
    other_pool = datasets.digits().subset(np.arange(500, 800))
    other = Session(other_pool, tmp_path / "other", watch=False)
    foreign = data_map(other, method="pca")
    brush(foreign, (-100, 100), (-100, 100))
    with pytest.raises(ValueError, match="another pool or representation"):
        queue_from(session, foreign)
    with pytest.raises(ValueError, match="another pool or representation"):
        queue_from(session, foreign.selections.brush.value)
    with pytest.raises(ValueError, match="did not draw"):
        queue_from(session, {"x_00000000": [0, 1], "y_00000000": [0, 1]})
    with pytest.raises(ValueError, match="keyed by the map's fields"):
        queue_from(session, {"lon": [0, 1], "lat": [0, 1]})
    other.close()
    with pytest.raises(ValueError, match="color must be one of"):
        data_map(session, color="mood")
    with pytest.raises(ValueError, match="method must be one of"):
        data_map(session, method="mds")
