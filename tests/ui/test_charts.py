"""Chart builders, PNG export and the live dashboard (no browser, no real session)."""

from __future__ import annotations

import threading
import time

import altair as alt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench import charts

EVAL_ON = "held-out test split"


def make_history(rounds: int = 4, epochs: int = 5) -> pd.DataFrame:
    rows = []
    for r in range(1, rounds + 1):
        loss = list(np.linspace(2.0, 0.5, epochs) / r)
        rows.append({"round": r, "n_labels": 10 * r, "accuracy": 0.5 + 0.1 * r,
                     "eval_on": EVAL_ON, "n_eval": 10 * r, "loss": loss,
                     "train_accuracy": [1 - x / 3 for x in loss],
                     "duration_s": 0.3})
    return pd.DataFrame(rows)


def make_curves(learners: bool = True) -> pd.DataFrame:
    rows = [{"n_labels": n, "accuracy": 0.5 + n / 1000 + seed / 100 + (s == "margin") / 10,
             "strategy": s, "seed": seed, "learner": lr}
            for lr in ("logreg", "mlp") for s in ("random", "margin") for seed in range(3)
            for n in (10, 20, 40)]
    frame = pd.DataFrame(rows)
    return frame if learners else frame[frame.learner == "mlp"].drop(columns="learner")


def rows(spec: dict) -> list[dict]:
    """Every data row of a Vega-Lite spec, from all its named datasets."""
    return [row for dataset in spec.get("datasets", {}).values() for row in dataset]


def texts(spec: dict) -> list[str]:
    return [row["text"] for row in rows(spec) if "text" in row]


def test_loss_chart_plots_latest_round():
    spec = charts.loss_chart(make_history()).to_dict()  # to_dict validates the schema
    data = rows(spec)
    assert "Training round 4" in spec["title"]
    assert len(spec["layer"]) == 2  # loss and train accuracy
    assert [row["epoch"] for row in data] == [1, 2, 3, 4, 5] * 2
    assert data[0]["value"] == pytest.approx(2.0 / 4)
    titles = {layer["encoding"]["y"]["title"] for layer in spec["layer"]}
    assert titles == {"loss", "train accuracy"}


def test_loss_chart_without_train_accuracy():
    history = make_history().assign(train_accuracy=[[]] * 4)
    spec = charts.loss_chart(history).to_dict()
    assert len(spec["layer"]) == 1 and len(rows(spec)) == 5


@pytest.mark.parametrize("history, message", [
    (pd.DataFrame(), "no training yet"),
    (pd.DataFrame(columns=list(make_history().columns)), "no training yet"),
    (make_history().assign(loss=[[]] * 4, train_accuracy=[[]] * 4), "no per-epoch loss"),
    (make_history().assign(loss=None, train_accuracy=np.nan), "no per-epoch loss"),
])
def test_loss_chart_placeholders(history, message):
    spec = charts.loss_chart(history).to_dict()
    assert any(message in text for text in texts(spec))


def layer(spec: dict, mark: str) -> dict:
    (found,) = [x for x in spec["layer"] if (x["mark"]["type"] if isinstance(x["mark"], dict)
                                             else x["mark"]) == mark]
    return found


def test_accuracy_chart_draws_the_interval_as_a_band():
    """Issue 18 item 1: every accuracy carries its Wilson 95% interval (from n_eval)."""
    from scipy.stats import binomtest

    history = make_history()
    history.loc[1, "accuracy"] = np.nan  # a round that could not be scored
    spec = charts.accuracy_chart(history).to_dict()
    assert spec["title"] == f"Accuracy on {EVAL_ON}"
    line, band = layer(spec, "line"), layer(spec, "area")
    data = spec["datasets"][line["data"]["name"]]
    assert [row["n_labels"] for row in data] == [10, 30, 40]
    assert line["encoding"]["x"]["field"] == "n_labels"
    assert (band["encoding"]["y"]["field"], band["encoding"]["y2"]["field"]) == (
        "accuracy_low", "accuracy_high")
    for row in spec["datasets"][band["data"]["name"]]:  # 6 of 10, 8 of 30, 9 of 40 right
        ci = binomtest(round(row["accuracy"] * row["n_eval"]), row["n_eval"]).proportion_ci(
            0.95, method="wilson")
        assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx((ci.low, ci.high))
    lower, upper = line["encoding"]["y"]["scale"]["domain"]
    assert 0 <= lower <= min(r["accuracy_low"] for r in data) and upper == 1  # the band in view
    tooltip = {t["field"] for t in line["encoding"]["tooltip"]}
    assert {"round", "n_labels", "accuracy", "accuracy_low", "accuracy_high", "n_eval",
            "eval_on"} <= tooltip


def test_accuracy_chart_with_baselines():
    history = make_history()
    spec = charts.accuracy_chart(history, other={"random": history.assign(accuracy=0.3)})
    spec = spec.to_dict()
    line = layer(spec, "line")
    assert line["encoding"]["color"]["scale"]["domain"] == ["this session", "random"]
    assert line["encoding"]["y"]["scale"]["domain"][0] <= 0.3  # the baseline stays in view
    assert len(spec["datasets"][line["data"]["name"]]) == 8
    no_n = history.drop(columns="n_eval")  # a history without sample sizes: no band, no error
    spec = charts.accuracy_chart(no_n, other=no_n).to_dict()
    assert len(spec["datasets"][layer(spec, "line")["data"]["name"]]) == 8


def test_accuracy_chart_placeholders_say_why():
    assert texts(charts.accuracy_chart(pd.DataFrame()).to_dict()) == ["no accuracy measured yet"]
    why = "audit sample too small (3 of 5 needed)"
    unscored = make_history().assign(accuracy=np.nan, eval_on=why)
    spec = charts.accuracy_chart(unscored).to_dict()
    assert texts(spec) == [f"no accuracy measured yet\n{why}"]
    assert spec["mark"]["lineBreak"] == "\n"  # drawn as two lines


def test_learning_curves_facets_by_learner():
    spec = charts.learning_curves(make_curves()).to_dict()
    assert spec["facet"]["column"]["field"] == "learner"
    data = pd.DataFrame(rows(spec))
    assert len(data) == 2 * 2 * 3  # learner x strategy x n_labels
    first = data[(data.learner == "mlp") & (data.strategy == "margin") & (data.n_labels == 10)]
    assert first[["mean", "low", "high", "seeds"]].iloc[0].tolist() == pytest.approx(
        [0.62, 0.61, 0.63, 3])


def test_learning_curves_without_learner_and_empty():
    spec = charts.learning_curves(make_curves(learners=False)).to_dict()
    assert "facet" not in spec and len(spec["layer"]) == 2
    assert {row["strategy"] for row in rows(spec)} == {"random", "margin"}
    assert texts(charts.learning_curves(pd.DataFrame()).to_dict()) == ["no simulation results"]


def test_class_balance_chart():
    labels = pd.DataFrame({"label": ["cat", "dog", "cat", "bird", "cat", "dog"]},
                          index=pd.Index([f"i{k}" for k in range(6)], name="item_id"))
    spec = charts.class_balance_chart(labels).to_dict()
    assert {row["label"]: row["count"] for row in rows(spec)} == {"cat": 3, "dog": 2, "bird": 1}
    assert spec["title"] == "Class balance (6 labels)"


def test_class_balance_of_sets_counts_each_class_of_a_set():
    labels = pd.DataFrame({"label": ['["cat", "dog"]', '["cat"]', "[]", None]})
    spec = charts.class_balance_chart(labels, sets=True).to_dict()
    assert {row["label"]: row["count"] for row in rows(spec)} == {"cat": 2, "dog": 1}
    assert spec["title"] == "Class balance (3 labels)"


def test_accuracy_chart_draws_micro_f1_beside_accuracy_for_sets():
    history = make_history()
    history["micro_f1"] = np.linspace(0.5, 0.8, len(history))
    spec = charts.accuracy_chart(history).to_dict()
    assert {row["metric"] for row in rows(spec) if "metric" in row} == {"micro-F1"}
    assert {x["encoding"]["y"]["title"] for x in spec["layer"]} == {"accuracy, micro-F1"}


@pytest.mark.parametrize("labels", [pd.DataFrame(), pd.DataFrame({"label": []})])
def test_class_balance_placeholder(labels):
    assert texts(charts.class_balance_chart(labels).to_dict()) == ["no labels yet"]


@pytest.mark.parametrize("build", [
    lambda: charts.loss_chart(make_history()),
    lambda: charts.learning_curves(make_curves()),
    lambda: charts.class_balance_chart(pd.DataFrame()),
])
def test_save_png(tmp_path, build):
    path = charts.save_png(build(), tmp_path / "chart.png", scale=1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 50


class FakeStore:
    def __init__(self):
        self.labels = pd.DataFrame({"label": ["a", "b"]}, index=["x1", "x2"])
        self.calls = 0

    def current_labels(self) -> pd.DataFrame:
        self.calls += 1
        return self.labels.copy()


class FakeSession:
    def __init__(self):
        self.history = make_history(rounds=1)
        self.store = FakeStore()
        self.subscribers = []

    def subscribe(self, callback):
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def emit(self, event: str) -> None:
        for callback in list(self.subscribers):
            callback(event)


def wait_for(condition, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_dashboard_updates_on_retrain():
    session = FakeSession()
    dash = charts.dashboard(session)
    assert all(isinstance(c, alt.JupyterChart) for c in dash.children)
    assert alt.JupyterChart._is_offline  # Vega bundled in, nothing fetched from a CDN
    assert [row["n_labels"] for row in rows(dash.accuracy.spec)] == [10]
    before = dash.loss.spec

    session.history = make_history(rounds=3)
    session.emit("retrain_finished")
    assert [row["n_labels"] for row in rows(dash.accuracy.spec)] == [10, 20, 30]
    assert dash.loss.spec != before and "round 3" in dash.loss.spec["title"]
    assert dash.loss.chart.to_dict() == dash.loss.spec

    session.history = make_history(rounds=4)  # an explicit refresh, with no event
    dash.refresh()
    assert len(rows(dash.accuracy.spec)) == 4
    assert dash.loss.layout.display is None
    session.history = make_history(rounds=2).assign(loss=[[], []])  # a learner without epochs
    dash.refresh()
    assert dash.loss.layout.display == "none"
    dash.close()
    assert session.subscribers == []


def test_dashboard_throttles_label_updates():
    session = FakeSession()
    dash = charts.dashboard(session, min_interval=0.3)
    calls = session.store.calls
    time.sleep(0.35)  # the dashboard was just drawn; let the interval pass
    session.store.labels = pd.DataFrame({"label": ["a", "b", "b"]})
    session.emit("labels_changed")  # the first one redraws at once
    assert session.store.calls == calls + 1

    def label_burst():
        for k in range(50):
            session.store.labels = pd.DataFrame({"label": ["a"] * (k + 1)})
            session.emit("labels_changed")

    worker = threading.Thread(target=label_burst)  # events come from any thread
    worker.start()
    worker.join()
    assert session.store.calls == calls + 1  # the burst is held back...
    assert wait_for(lambda: texts(dash.balance.spec) == [] and rows(dash.balance.spec)[0][
        "count"] == 50)  # ...and the last state is drawn once the interval is over
    assert session.store.calls == calls + 2
    dash.close()


def test_dashboard_survives_a_failing_store(caplog):
    session = FakeSession()
    dash = charts.dashboard(session)
    session.store.current_labels = lambda: 1 / 0
    session.emit("retrain_finished")  # logged, not raised into the session's thread
    assert "could not redraw" in caplog.text
    dash.close()


def test_accuracy_chart_shows_macro_f1_and_balanced_accuracy_when_there():
    history = make_history().assign(macro_f1=[0.2, 0.3, np.nan, 0.5], balanced_accuracy=0.4)
    spec = charts.accuracy_chart(history).to_dict()
    band, accuracy, others = spec["layer"]
    assert accuracy["encoding"]["y"]["field"] == "accuracy"
    assert others["mark"]["strokeDash"] == [4, 3]
    data = rows(spec)
    assert sorted({r["metric"] for r in data if "metric" in r}) == ["balanced accuracy", "macro-F1"]
    assert len([r for r in data if r.get("metric") == "macro-F1"]) == 3  # the NaN round is left out
    assert accuracy["encoding"]["y"]["scale"]["domain"][0] <= 0.2  # all stay in view


def test_learning_curves_of_another_metric():
    curves = make_curves().assign(macro_f1=lambda c: c["accuracy"] - 0.1)
    spec = charts.learning_curves(curves, metric="macro_f1").to_dict()
    assert spec["spec"]["layer"][0]["encoding"]["y"]["title"] == "mean macro-F1"
    means = [r["mean"] for r in rows(spec)]
    assert min(means) == pytest.approx(make_curves().groupby(
        ["learner", "strategy", "n_labels"])["accuracy"].mean().min() - 0.1)


def test_accuracy_chart_names_every_line_and_one_axis_title():
    history = make_history().assign(macro_f1=0.5, balanced_accuracy=0.55)
    spec = charts.accuracy_chart(history).to_dict()
    band, solid, dashed = spec["layer"]
    titles = {layer["encoding"]["y"]["title"] for layer in (band, solid, dashed)}
    assert titles == {"accuracy, macro-F1, balanced accuracy"}  # Vega-Lite would join two titles
    assert solid["encoding"]["color"]["legend"]["labelExpr"] == "'accuracy'"
    assert {r["metric"] for r in spec["datasets"][dashed["data"]["name"]]} == {
        "macro-F1", "balanced accuracy"}
