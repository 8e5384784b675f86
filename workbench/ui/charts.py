"""Altair charts of a session's progress, and a live dashboard of them.

Why ``JupyterChart`` offline: Altair 6 emits Vega-Lite 6; offline, the default renderer (Vega
from a CDN), ``mimetype`` (JupyterLab 4 draws Vega-Lite <= 5) and a plain ``JupyterChart``
(vega-embed from esm.sh) show nothing. ``JupyterChart.enable_offline()`` bundles Vega from
vl-convert into the widget (~900 KB, once per kernel), whose chart can then be swapped in place
after each retrain. PNG export goes through vl-convert too."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import altair as alt
import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.learn.metrics import accuracy_interval

log = logging.getLogger(__name__)
WIDTH, HEIGHT = 300, 200
BLUE, ORANGE, GREY = "#4c78a8", "#f58518", "#888888"
PALETTE = [BLUE, GREY, ORANGE, "#54a24b", "#e45756", "#b279a2"]


def _message(text: str, title: str) -> alt.Chart:
    """A placeholder chart of grey text (lines split at newlines), sized like the real ones."""
    return alt.Chart(pd.DataFrame({"text": [text]}), title=title, width=WIDTH, height=HEIGHT
                     ).mark_text(size=14, color=GREY, lineBreak="\n").encode(text="text:N")


def _floats(value) -> list[float]:
    """A per-epoch list from a history cell that may be a list, an array, None or NaN."""
    return [float(v) for v in value] if hasattr(value, "__iter__") else []


def loss_chart(history: pd.DataFrame) -> alt.TopLevelMixin:
    """Loss (left axis) and train accuracy (right axis) per epoch of the latest round."""
    history = pd.DataFrame(history)
    if history.empty:
        return _message("no training yet", "Training loss")
    last = history.sort_values("round").iloc[-1]
    title = f"Training round {int(last['round'])} ({int(last['n_labels'])} labels)"
    loss, acc = _floats(last.get("loss")), _floats(last.get("train_accuracy"))
    if not loss and not acc:
        return _message("this learner reports no per-epoch loss", title)
    x = alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1))
    layers = []
    for values, name, color, y in [(loss, "loss", ORANGE, alt.Scale(zero=False)),
                                   (acc, "train accuracy", BLUE, alt.Scale(domain=[0, 1]))]:
        if values:
            data = pd.DataFrame({"epoch": range(1, len(values) + 1), "value": values})
            axis = alt.Axis(titleColor=color, orient="left" if name == "loss" else "right")
            point = alt.OverlayMarkDef(color=color) if len(values) <= 30 else False
            layers.append(alt.Chart(data).mark_line(point=point, color=color).encode(
                x=x, y=alt.Y("value:Q", title=name, scale=y, axis=axis),
                tooltip=["epoch:Q", alt.Tooltip("value:Q", format=".4f")]))
    return alt.layer(*layers, title=title).resolve_scale(y="independent").properties(
        width=WIDTH, height=HEIGHT)


METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy",
                "micro_f1": "micro-F1"}  # micro-F1: multi-label sessions (accuracy: whole sets right)


def accuracy_chart(history: pd.DataFrame, *,
                   other: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None) -> alt.Chart:
    """Accuracy vs labels over all rounds; ``other``: a baseline history or {name: history}.

    Each accuracy is drawn with its Wilson 95% interval as a band (from n_eval, the number of
    items it was measured on): 5 audit labels say little, and the band shows how little.
    When the history has them, this session's macro-F1 and balanced accuracy are drawn
    beside its accuracy (dashed): on imbalanced data accuracy alone hides the rare classes."""
    runs = {"this session": history, **(
        {} if other is None else other if isinstance(other, Mapping) else {"other": other})}
    frames = [pd.DataFrame(h).assign(run=name) for name, h in runs.items() if len(h)]
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if data.empty or data["accuracy"].isna().all():  # eval_on then says why, if anything
        why = "" if data.empty else f"\n{data['eval_on'].iloc[-1]}"
        return _message(f"no accuracy measured yet{why}", "Accuracy")
    data = data.dropna(subset=["accuracy"])
    if "n_eval" not in data:
        data = data.assign(n_eval=np.nan)
    bounds = [accuracy_interval(a, n) if pd.notna(n) else (np.nan, np.nan)
              for a, n in zip(data["accuracy"], data["n_eval"])]
    data = data.assign(accuracy_low=[b[0] for b in bounds], accuracy_high=[b[1] for b in bounds])
    data = data[["run", "round", "n_labels", "accuracy", "accuracy_low", "accuracy_high", "n_eval",
                 "eval_on"]]
    mine = data[data["run"] == "this session"]
    title = f"Accuracy on {(mine if len(mine) else data)['eval_on'].iloc[-1]}"
    extra = _other_metrics(history)
    lowest = min([data["accuracy"].min(), data["accuracy_low"].min(skipna=True),
                  *([extra["value"].min()] if len(extra) else [])])
    lowest = data["accuracy"].min() if pd.isna(lowest) else lowest
    lower = max(0.0, math.floor(lowest * 10 - 1) / 10)  # zoom in, in tenths
    names = list(dict.fromkeys(data["run"]))
    legend = alt.Legend(title=None, orient="bottom-right") if len(names) > 1 else None
    if legend is None and not extra.empty:  # one run beside its other metrics: name its line
        legend = alt.Legend(title=None, orient="bottom-right", labelExpr="'accuracy'")
    x = alt.X("n_labels:Q", title="number of labels")
    scale = alt.Scale(domain=[lower, 1])
    # Layers sharing an axis join their titles: give both the same one.
    y_title = ", ".join(["accuracy", *dict.fromkeys(extra["metric"])])
    color = alt.Color("run:N", legend=legend, scale=alt.Scale(domain=names, range=PALETTE))
    tooltip = ["run:N", "round:Q", "n_labels:Q", alt.Tooltip("accuracy:Q", format=".3f"),
               alt.Tooltip("accuracy_low:Q", title="95% CI low", format=".3f"),
               alt.Tooltip("accuracy_high:Q", title="95% CI high", format=".3f"),
               alt.Tooltip("n_eval:Q", title="measured on (items)"), "eval_on:N"]
    line = alt.Chart(data).mark_line(point=True).encode(
        x=x, y=alt.Y("accuracy:Q", title=y_title, scale=scale), color=color, tooltip=tooltip)
    band = alt.Chart(data.dropna(subset=["accuracy_low"])).mark_area(opacity=0.18).encode(
        x=x, y=alt.Y("accuracy_low:Q", title=y_title, scale=scale), y2="accuracy_high:Q",
        color=alt.Color("run:N", legend=None, scale=alt.Scale(domain=names, range=PALETTE)),
        tooltip=tooltip)
    chart = alt.layer(band, line, title=title).properties(width=WIDTH, height=HEIGHT)
    if extra.empty:
        return chart
    metrics = list(dict.fromkeys(extra["metric"]))
    dashed = alt.Chart(extra).mark_line(point=True, strokeDash=[4, 3], opacity=0.8).encode(
        x=x, y=alt.Y("value:Q", title=y_title, scale=scale),
        color=alt.Color("metric:N", title=None, legend=alt.Legend(orient="bottom-right"),
                        scale=alt.Scale(domain=metrics, range=[ORANGE, "#54a24b", "#b279a2"][:len(metrics)])),
        tooltip=["metric:N", "round:Q", "n_labels:Q", alt.Tooltip("value:Q", format=".3f")])
    return alt.layer(band, line, dashed, title=title).resolve_scale(color="independent").properties(
        width=WIDTH, height=HEIGHT)


SCORES = {  # a task's per-round scores: (columns -> names, what it is, the y axis, what is labeled)
    "spans": ({"span_f1": "span F1", "span_precision": "precision", "span_recall": "recall"},
              "Span F1", "exact-match span score", "texts"),
    "boxes": ({"box_map50": "mAP@0.5", "box_precision": "precision", "box_recall": "recall"},
              "mAP@0.5", "detection score (IoU >= 0.5)", "images"),
}


def span_f1_chart(history: pd.DataFrame, task: str = "spans") -> alt.Chart:
    """A spans session's exact-match span F1, precision and recall (a boxes session's mAP@0.5,
    precision and recall at IoU 0.5) against the number of labeled texts (images), one point
    per round."""
    names, title, axis, items = SCORES[task]
    main = next(iter(names))
    data = pd.DataFrame(history)
    if data.empty or main not in data or data[main].isna().all():
        why = "" if data.empty else f"\n{data['eval_on'].iloc[-1]}"
        return _message(f"no {title} measured yet{why}", title)
    long = data.melt(id_vars=["round", "n_labels", "n_eval"], value_vars=list(names),
                     var_name="metric", value_name="value").dropna(subset=["value"])
    long["metric"] = long["metric"].map(names)
    lower = max(0.0, math.floor(long["value"].min() * 10 - 1) / 10)
    return alt.Chart(long, title=f"{title} on {data['eval_on'].iloc[-1]}").mark_line(point=True).encode(
        x=alt.X("n_labels:Q", title=f"number of labeled {items}"),
        y=alt.Y("value:Q", title=axis, scale=alt.Scale(domain=[lower, 1])),
        color=alt.Color("metric:N", title=None, legend=alt.Legend(orient="bottom-right"),
                        scale=alt.Scale(domain=list(names.values()), range=[BLUE, ORANGE, GREY])),
        strokeDash=alt.condition(f"datum.metric == '{names[main]}'", alt.value([1, 0]), alt.value([4, 3])),
        tooltip=["metric:N", "round:Q", "n_labels:Q", alt.Tooltip("value:Q", format=".3f"),
                 alt.Tooltip("n_eval:Q", title=f"measured on ({items})")],
    ).properties(width=WIDTH, height=HEIGHT)


def _other_metrics(history) -> pd.DataFrame:
    """This session's macro-F1 and balanced accuracy (and micro-F1 of a multi-label session)
    per round, long form (metric, value)."""
    history = pd.DataFrame(history)
    columns = [m for m in ("micro_f1", "macro_f1", "balanced_accuracy") if m in history]
    if not columns or history.empty:
        return pd.DataFrame(columns=["round", "n_labels", "metric", "value"])
    long = history.melt(id_vars=["round", "n_labels"], value_vars=columns, var_name="metric")
    long = long.dropna(subset=["value"])
    return long.assign(metric=long["metric"].map(METRIC_NAMES))


def learning_curves(curves: pd.DataFrame, metric: str = "accuracy") -> alt.TopLevelMixin:
    """Mean `metric` ("accuracy", "macro_f1" or "balanced_accuracy") per strategy against
    labels, a min..max band over seeds, facet by learner."""
    curves = pd.DataFrame(curves)
    if curves.empty:
        return _message("no simulation results", "Learning curves")
    keys = [k for k in ("learner", "strategy", "n_labels") if k in curves]
    data = curves.groupby(keys, as_index=False).agg(
        mean=(metric, "mean"), low=(metric, "min"), high=(metric, "max"),
        seeds=("seed", "nunique"))
    x = alt.X("n_labels:Q", title="number of labels")
    color = alt.Color("strategy:N", scale=alt.Scale(scheme="tableau10"),
                      legend=alt.Legend(symbolOpacity=1, symbolType="stroke"))
    band = alt.Chart().mark_area(opacity=0.2).encode(
        x=x, y=alt.Y("low:Q", title=f"mean {METRIC_NAMES.get(metric, metric)}",
                     scale=alt.Scale(zero=False)),
        y2="high:Q", color=color)
    line = alt.Chart().mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=x, y="mean:Q", color=color,
        tooltip=[*keys, *(alt.Tooltip(f"{k}:Q", format=".3f") for k in ("mean", "low", "high")),
                 "seeds:Q"])
    chart = alt.layer(band, line, data=data).properties(width=WIDTH + 60, height=HEIGHT + 40)
    title = alt.Title("Learning curves", subtitle=f"band: min..max over "
                      f"{curves['seed'].nunique()} seeds", anchor="start")
    if "learner" in data:
        return chart.facet(column=alt.Column("learner:N", title=None), title=title)
    return chart.properties(title=title)


def class_balance_chart(labels: pd.DataFrame, *, sets: bool = False,
                        spans: bool = False, boxes: bool = False) -> alt.TopLevelMixin:
    """Horizontal bars of how many items carry each label, the most common first (a
    multi-label item's set, a JSON list, counts once for each of its classes; `spans`: how
    many spans of each label the texts hold; `boxes`: how many boxes of each class)."""
    labels = pd.DataFrame(labels)
    if labels.empty or labels["label"].isna().all():
        return _message("no labels yet", "Class balance")
    values = labels["label"].dropna().astype(str)
    if sets:  # a multi-label store: each label is a JSON list of classes
        values = values.map(json.loads).explode().dropna().astype(str)
    if spans:  # a spans store: {"v": 1, "spans": [[start, end, label], ...]}
        values = values.map(lambda v: [s[2] for s in json.loads(v)["spans"]]).explode().dropna().astype(str)
        if values.empty:
            return _message("no spans marked yet", "Span labels")
    if boxes:  # a boxes store: {"v": 1, "boxes": [[x, y, w, h, label], ...]}
        values = values.map(lambda v: [b[4] for b in json.loads(v)["boxes"]]).explode().dropna().astype(str)
        if values.empty:
            return _message("no boxes drawn yet", "Box classes")
    data = values.value_counts().reset_index()  # label, count
    y = alt.Y("label:N", title="label", sort="-x")
    bars = alt.Chart().mark_bar(color=BLUE).encode(
        x=alt.X("count:Q", title="spans marked" if spans else "boxes drawn" if boxes else "items labelled"),
        y=y,
        tooltip=["label:N", "count:Q"])
    text = bars.mark_text(align="left", dx=3, color=GREY).encode(text="count:Q")
    return alt.layer(bars, text, data=data,
                     title=f"Class balance ({len(labels['label'].dropna())} labels)").properties(
        width=WIDTH, height=max(HEIGHT, 16 * len(data)))


def save_png(chart: alt.TopLevelMixin, path: str | Path, scale: float = 2) -> Path:
    """Write ``chart`` as a PNG through vl-convert (works offline)."""
    chart.save(str(path), format="png", scale_factor=scale)
    return Path(path)


class Dashboard(widgets.HBox):
    """Accuracy, loss and class balance of a session, redrawn in place as it changes."""

    def __init__(self, session, *, min_interval: float = 1.0):
        self._session, self.min_interval, self._timer = session, min_interval, None
        self._update_lock, self._throttle_lock = threading.Lock(), threading.Lock()
        self._last_balance, self._unsubscribe = float("-inf"), None
        super().__init__(layout=widgets.Layout(flex_flow="row wrap"))
        alt.JupyterChart.enable_offline()  # the keyword offline=True is ignored by altair 6.3
        charts = [alt.JupyterChart(_message("", "")) for _ in range(3)]  # filled by refresh()
        self.accuracy, self.loss, self.balance = self.children = charts
        self.refresh()
        self._unsubscribe = session.subscribe(self._on_event)

    def refresh(self, *, only_labels: bool = False) -> None:
        """Redraw now (a new ``.chart`` re-sends the spec); ``only_labels``: the balance only."""
        with self._update_lock:
            task = getattr(self._session, "task", "single")
            self.balance.chart = class_balance_chart(
                self._session.store.current_labels(), sets=task == "multi_label", spans=task == "spans",
                boxes=task == "boxes")
            if not only_labels:
                history = pd.DataFrame(self._session.history)
                self.accuracy.chart = (span_f1_chart(history, task) if task in SCORES
                                       else accuracy_chart(history))
                self.loss.chart = loss_chart(history)
                # a learner without epochs (the default LightHead) never has a loss curve: no
                # empty panel for it once a round has shown that
                curves = [c for c in history.get("loss", []) if isinstance(c, (list, tuple, np.ndarray))]
                no_curve = len(history) > 0 and not any(len(c) for c in curves)
                self.loss.layout.display = "none" if no_curve else None
            self._last_balance = time.monotonic()

    def _on_event(self, event: str) -> None:
        """Redraw all on "retrain_finished"; the class balance on "labels_changed", throttled."""
        try:
            if event == "retrain_finished":
                self.refresh()
            elif event == "labels_changed" and self._due():
                self.refresh(only_labels=True)
        except Exception:  # a broken chart must not break the session that notifies us
            log.exception("dashboard could not redraw after %r", event)

    def _due(self) -> bool:
        """Whether to redraw now; if not, make sure a trailing redraw is scheduled."""
        with self._throttle_lock:
            if self._timer is threading.current_thread():  # the trailing redraw, now
                self._timer = None
            wait = self._last_balance + self.min_interval - time.monotonic()
            due = self._timer is None and wait <= 0
            if due:
                self._last_balance = time.monotonic()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._on_event, ["labels_changed"])
                self._timer.daemon = True
                self._timer.start()
            return due

    def close(self) -> None:
        """Stop listening to the session and close the chart widgets."""
        if self._timer is not None:
            self._timer.cancel()
        if callable(self._unsubscribe):  # subscribe() returns the way to unsubscribe
            self._unsubscribe, unsubscribe = None, self._unsubscribe
            unsubscribe()
        for chart in self.children:
            chart.close()
        super().close()


def dashboard(session, *, min_interval: float = 1.0) -> Dashboard:
    """A live widget of a duck-typed ``session``: ``.history``, ``.store.current_labels()``
    and ``.subscribe(callback)``, whose ``callback(event)`` may come from any thread."""
    return Dashboard(session, min_interval=min_interval)
