"""The map's chart: which points are drawn, their colours and tooltips, as an Altair chart.

Big pools: at most `sample` points are drawn (default 5,000: Altair's own limit for inline
data, which keeps the notebook responsive), every labeled item among them and a fixed random
sample of the rest; the title says so.

Colours: "label" (current labels, unlabeled items grey), "prediction" (the latest model's
guess), "uncertainty" (1 - the top probability of the model that knows only people's labels,
the one the queue ranks by), "suspicion" (the score of `session.suspects()`, or
`workbench.loop.cleaning.suspects`: how likely a label is wrong; items not scored grey).
Tooltips show the item id, its label and the model's prediction, as text.

The chart has an interval selection named "brush". Its points' coordinates are named
`x_<tag>` and `y_<tag>`, where the tag names the projection, so a brush's value says which
map it was drawn on; the chart's `usermeta` names the pool's features too (read back by
workbench.ui.map_selection).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from workbench.data.tasks import is_parts
from workbench.ui import map_parts
from workbench.ui.label_payload import is_multi_label
from workbench.ui.map_projection import METHOD_NAMES, Projection, fixed_order, flat

COLORS = ("label", "prediction", "uncertainty", "suspicion")
WIDTH, HEIGHT = 460, 380
GREY = "#bbbbbb"
TABLEAU = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2",
           "#ff9da6", "#9d755d", "#79706e"]
CATEGORY20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
              "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
              "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"]


def plotted(session, projection: Projection, sample: int) -> np.ndarray:
    """Pool positions to draw, sorted: all items when they are at most `sample`; else every
    labeled item (a random `sample` of them if there are more) and the head of a fixed
    random order of the others, which lies within what t-SNE and UMAP were fitted on."""
    pool = session.pool
    n = len(pool)
    if n <= sample:
        return np.arange(n)
    labeled = np.sort(pool.positions(list(session.labels)))
    if len(labeled) >= sample:
        return np.sort(np.random.default_rng(0).choice(labeled, sample, replace=False))
    is_labeled = np.zeros(n, dtype=bool)
    is_labeled[labeled] = True
    order = fixed_order(n)
    rest = order[~is_labeled[order]][:sample - len(labeled)]
    return np.sort(np.concatenate([labeled, rest]))


def _unlabeled_name(class_names) -> str:
    return "unlabeled" if "unlabeled" not in class_names else "(no label)"


def points(session, positions, xy, projection: Projection, color: str) -> pd.DataFrame:
    """One row per point: item_id, x, y, label, prediction and the colour's value."""
    pool = session.pool
    names = session.class_names
    unlabeled = _unlabeled_name(names)
    ids = np.asarray(pool.item_ids, dtype=object)[positions]
    labels = session.labels
    sets, parts = is_multi_label(session), is_parts(session)
    text = ((lambda v: map_parts.classes_text(session, v)) if parts
            else (lambda v: map_parts.join_classes(v, names)) if sets else str)
    frame = pd.DataFrame({"item_id": ids, "x": xy[:, 0].astype(float), "y": xy[:, 1].astype(float),
                          "label": [text(labels[i]) if i in labels else unlabeled for i in ids]})
    proba = session.pool_proba(positions)
    if color in ("prediction", "uncertainty") and proba is None:
        raise ValueError(f"color={color!r} needs a trained model and there is none yet: label a few "
                         "items of at least two classes and call session.retrain() first")
    if proba is None:
        frame["prediction"] = "no model yet"
    elif parts:  # the classes of the suggested spans or boxes; the queue's own measure
        frame["prediction"] = map_parts.predictions(session, positions)
        if color == "uncertainty":
            frame["uncertainty"], frame.attrs["measure"], frame.attrs["most"] = \
                map_parts.uncertainty(session, positions)
    elif sets:  # each class's own probability: the set at the learner's threshold, and the
        # mean over classes of 1 - |2p - 1| (what diverse_uncertainty ranks by)
        threshold = getattr(session.learner, "threshold", 0.5)
        frame["prediction"] = [map_parts.join_classes([names[j] for j in np.flatnonzero(row >= threshold)],
                                                      names) for row in proba]
        if color == "uncertainty":
            ranking = session.pool_proba(positions, labels_only=True).astype(float)
            frame["uncertainty"] = (1 - np.abs(2 * ranking - 1)).mean(axis=1)
    else:
        frame["prediction"] = [names[j] for j in proba.argmax(axis=1)]
        if color == "uncertainty":
            ranking = session.pool_proba(positions, labels_only=True)
            frame["uncertainty"] = 1 - ranking.max(axis=1).astype(float)
    if color == "suspicion":
        scores = _suspicion(session)
        frame["suspicion"] = frame["item_id"].map(scores)
    return frame


def _suspicion(session) -> pd.Series:
    """item_id -> suspicion score, from `session.suspects()` or workbench.loop.cleaning."""
    find = getattr(session, "suspects", None)
    if not callable(find):
        try:
            from workbench.loop.cleaning import suspects
        except ImportError as e:
            raise RuntimeError("color='suspicion' needs workbench.loop.cleaning.suspects (which "
                               f"scores how likely each label is wrong), and it is missing: {e}") from e
        table = suspects(session)
    else:
        table = find()
    table = pd.DataFrame(table)
    if "score" not in table.columns:  # sets, spans and boxes: a row per decision or part
        table = table.rename(columns={"suspicion": "score"})
    if not {"item_id", "score"} <= set(table.columns):
        raise RuntimeError(f"suspects() must return item_id and score columns, got {list(table.columns)}")
    # one row per item: its worst (a set's class, a span or box; one row already for classes)
    return table["score"].astype(float).groupby(table["item_id"].astype(str)).max()


def _palette(n: int) -> list[str]:
    base = TABLEAU if n <= len(TABLEAU) else CATEGORY20
    return [base[i % len(base)] for i in range(n)]


def _describe_features(session, features) -> str:
    rep = session.inputs.representation() if session.inputs.uses_representation else None
    what = "the pool's representation" if rep is not None else "the pool's features"
    return f"{what} ({features.shape[1]}-d)"


def chart(session, frame: pd.DataFrame, projection: Projection, color: str, *,
           n_items: int) -> alt.Chart:
    """The scatter plot of `frame`'s points coloured by `color`, with the "brush", its fields
    named by the projection's tag and the map's metadata in `usermeta`."""
    tag = projection.tag
    xf, yf = f"x_{tag}", f"y_{tag}"
    data = frame.rename(columns={"x": xf, "y": yf})
    records = data.astype(object).where(data.notna(), None).to_dict("records")  # NaN is no JSON
    names = list(session.class_names)
    name = METHOD_NAMES[projection.method]
    features = flat(session.inputs.features())
    shown = (f"all {n_items:,} items" if len(frame) == n_items
             else f"{len(frame):,} of {n_items:,} items shown: every labeled one and a random sample")
    title = alt.Title(
        f"{session.pool.name}: {name} map of {_describe_features(session, features)}, "
        f"coloured by {color} ({shown})",
        subtitle=["drag a rectangle, then session.queue_from(chart) serves those items next"],
        anchor="start")
    sets = is_multi_label(session) or is_parts(session)  # colours: the texts there are
    if color == "label":
        unlabeled = _unlabeled_name(names)
        shown = sorted(set(frame["label"]) - {unlabeled}) if sets else names  # sets: those seen
        colour = alt.Color("label:N", title="label", scale=alt.Scale(
            domain=[*shown, unlabeled], range=[*_palette(len(shown)), GREY]))
    elif color == "prediction":
        shown = sorted(set(frame["prediction"])) if sets else names
        colour = alt.Color("prediction:N", title="prediction",
                           scale=alt.Scale(domain=shown, range=_palette(len(shown))))
    elif color == "uncertainty" and is_parts(session):  # from 0 to the measure's most, if it has one
        most = frame.attrs.get("most")
        colour = alt.Color("uncertainty:Q", title=frame.attrs.get("measure", "uncertainty"),
                           scale=alt.Scale(scheme="viridis", domainMin=0) if most is None else
                           alt.Scale(scheme="viridis", domain=[0, most]))
    elif color == "uncertainty":
        colour = alt.Color("uncertainty:Q", title="uncertainty",
                           scale=alt.Scale(scheme="viridis", domain=[0, 1 if sets else 1 - 1 / len(names)]))
    else:
        colour = alt.condition("isValid(datum.suspicion)",
                               alt.Color("suspicion:Q", title="suspicion",
                                         scale=alt.Scale(scheme="reds")),
                               alt.value(GREY))
    tooltip = [alt.Tooltip("item_id:N", title="item"), alt.Tooltip("label:N", title="label"),
               alt.Tooltip("prediction:N", title="prediction")]
    if color in ("uncertainty", "suspicion"):
        tooltip.append(alt.Tooltip(f"{color}:Q", title=color, format=".3f"))
    brush = alt.selection_interval(name="brush")
    axis = alt.Axis(labels=False, ticks=False, grid=False)
    return alt.Chart(alt.InlineData(values=records)).mark_circle(
        size=30 if len(frame) <= 2_000 else 14).encode(
        x=alt.X(f"{xf}:Q", title=f"{name} 1", axis=axis, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{yf}:Q", title=f"{name} 2", axis=axis, scale=alt.Scale(zero=False)),
        color=colour,
        opacity=alt.condition(brush, alt.value(0.85), alt.value(0.2)),
        tooltip=tooltip,
    ).add_params(brush).properties(
        width=WIDTH, height=HEIGHT, title=title,
        usermeta={"workbench": {"kind": "data_map", "pool": session.pool.name, "n_items": n_items,
                                "features": projection.features_key, "method": projection.method,
                                "tag": tag, "color": color, "x": xf, "y": yf}})
