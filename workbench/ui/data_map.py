"""A map of the pool as the learner sees it, and a queue drawn on it with the mouse.

    m = data_map(session, color="uncertainty")   # a JupyterChart: drag a rectangle on it
    queue_from(session, m)                       # the labeling widget serves those items next

The map is a 2-D projection of `session.inputs.features()`, what the learner is trained on
(the pool's representation for the default learner, the pool's own features for any other),
so clusters on it are what the model can tell apart. Methods:
- "umap": umap-learn, when it is installed (it is optional, never downloaded);
- "tsne": scikit-learn's Barnes-Hut t-SNE, 500 iterations (on the digits, a 5-nearest-neighbour
  classifier on the map scores 98.4% at 500 and 98.2% at 1,000, at half the time), on one
  thread (two threads on two busy cores took 4x longer);
- "pca": the first two principal components (0.1 s for 10,000 items);
- "auto": UMAP if installed; else t-SNE up to `TSNE_AUTO_MAX` (2,500) items to fit and PCA
  above. Timed on two shared cores, 128-d features, one thread: t-SNE 1.6 s of CPU for 1,000
  items, 3.5 s for the 1,797 digits, 6.7 s for 3,000, 13 s for 5,000; PCA 0.1 s for 1,797 and
  for 10,000. A map should come back in seconds, so larger pools get PCA unless asked.

t-SNE and UMAP are fitted on at most `sample` items: the whole pool when it is that small,
else a fixed random sample of it (seeded, independent of the labels, so the map stays put as
labels come in); labeled items outside that sample are placed at the distance-weighted mean
position of their 5 nearest fitted items. PCA is fitted on (up to 50,000 of) the items and
places all of them. Projections are cached by a fingerprint of the features (the
representation's fingerprint, or one of the pool's features) and the method, so a second
map of the same session, coloured differently or after more labels, is drawn instantly, and
so is a map of a new Session on the same pool (a notebook cell run again).

Big pools: at most `sample` points are drawn (default 5,000: Altair's own limit for inline
data, which keeps the notebook responsive), every labeled item among them and a fixed random
sample of the rest; the title says so.

Colours: "label" (current labels, unlabeled items grey), "prediction" (the latest model's
guess), "uncertainty" (1 - the top probability of the model that knows only people's labels,
the one the queue ranks by), "suspicion" (the score of `session.suspects()`, or
`workbench.loop.cleaning.suspects`: how likely a label is wrong; items not scored grey).
Tooltips show the item id, its label and the model's prediction, as text.

The chart is an Altair `JupyterChart` with an interval selection named "brush"; offline, it
bundles Vega (see workbench.ui.charts). Its points' coordinates are named `x_<tag>` and
`y_<tag>`, where the tag names the projection, so a brush's value ({"x_<tag>": [lo, hi],
"y_<tag>": [lo, hi]}) says which map it was drawn on; the chart's `usermeta` names the pool's
features too. `queue_from` refuses a chart or a selection from a map of other features.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from workbench.data.representation import fingerprint as pool_fingerprint

MAX_POINTS = 5_000      # points drawn by default
TSNE_AUTO_MAX = 2_500   # "auto" fits t-SNE on at most this many items, PCA above
TSNE_ITERATIONS = 500
PCA_FIT_MAX = 50_000
PLACE_NEIGHBORS = 5
COLORS = ("label", "prediction", "uncertainty", "suspicion")
METHODS = ("auto", "umap", "tsne", "pca")
METHOD_NAMES = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}
WIDTH, HEIGHT = 460, 380
GREY = "#bbbbbb"
TABLEAU = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2",
           "#ff9da6", "#9d755d", "#79706e"]
CATEGORY20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
              "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
              "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"]
EMPTY_SELECTION = ("the selection is empty: drag a rectangle on the map first, then call "
                   "queue_from again")


@dataclass
class Projection:
    """2-D coordinates of a pool's items (row i: pool position i), NaN where not placed yet."""

    method: str                 # "umap", "tsne" or "pca"
    features_key: str           # fingerprint of the features it was computed from
    tag: str                    # names it in the chart's fields (x_<tag>, y_<tag>)
    coords: np.ndarray          # (N, 2) float32
    fitted: np.ndarray          # positions it was fitted on (sorted)
    seconds: float              # how long fitting took
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def at(self, features: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Coordinates of these items, placing the ones not fitted (t-SNE, UMAP) among
        their nearest fitted neighbours, once."""
        with self._lock:
            missing = positions[np.isnan(self.coords[positions, 0])]
            if len(missing):
                self.coords[missing] = _place(features, self.fitted, self.coords[self.fitted],
                                              missing)
            return self.coords[positions]


_LOCK = threading.Lock()
_PROJECTIONS: OrderedDict[tuple, Projection] = OrderedDict()   # (features, method, fit) -> it
_MAPS: OrderedDict[str, tuple[str, pd.DataFrame]] = OrderedDict()  # tag -> (features, points)
_FEATURE_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> key
_LATEST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()        # session -> tag


# -- the map ----------------------------------------------------------------------------------
def data_map(session, color: str = "label", method: str = "auto",
             sample: int | None = None) -> alt.JupyterChart:
    """A scatter plot of the pool's items projected to 2-D from what the learner sees,
    coloured by `color` ("label", "prediction", "uncertainty" or "suspicion"), with a
    rectangle brush ("brush") to pick items for `queue_from`. `method`: "auto", "umap",
    "tsne" or "pca" (see the module doc); `sample`: the most points drawn (default 5,000;
    labeled items always among them). Returns an `altair.JupyterChart`; its
    `selections.brush.value` is the rectangle once one is drawn. While the pool's
    representation is still being learned, this waits for it (the map shows what the
    learner sees)."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    sample = MAX_POINTS if sample is None else int(sample)
    if sample < 1:
        raise ValueError(f"sample must be a number of points >= 1, got {sample!r}")
    pool = session.pool
    features = _flat(session.inputs.features())
    projection = projection_of(session, method, sample=sample)
    positions = _plotted(session, projection, sample)
    xy = projection.at(features, positions)
    frame = _points(session, positions, xy, projection, color)
    with _LOCK:
        _remember(_MAPS, projection.tag, (projection.features_key, frame[["item_id", "x", "y"]]),
                  keep=16)
        _LATEST[session] = projection.tag
    chart = _chart(session, frame, projection, color, n_items=len(pool))
    alt.JupyterChart.enable_offline()  # Vega bundled into the widget: draws without a network
    return alt.JupyterChart(chart)


def projection_of(session, method: str = "auto", *, sample: int = MAX_POINTS) -> Projection:
    """The session's pool projected to 2-D with `method` (cached; see the module doc)."""
    n = len(session.pool)
    method = resolve_method(method, min(n, sample))
    fit_n = n if method == "pca" else min(n, sample)
    key = features_key(session)
    cache_key = (key, method, fit_n)
    with _LOCK:
        cached = _PROJECTIONS.get(cache_key)
        if cached is not None:
            _PROJECTIONS.move_to_end(cache_key)
            return cached
    features = _flat(session.inputs.features())
    fitted = np.sort(_fixed_order(n)[:fit_n])
    started = time.perf_counter()
    coords = np.full((n, 2), np.nan, dtype=np.float32)
    if method == "pca":
        coords[:] = _pca(features)
    else:
        coords[fitted] = (_tsne if method == "tsne" else _umap)(features[fitted])
    tag = hashlib.blake2b(f"{key}|{method}|{fit_n}".encode(), digest_size=4).hexdigest()
    projection = Projection(method, key, tag, coords, fitted, round(time.perf_counter() - started, 3))
    with _LOCK:
        _remember(_PROJECTIONS, cache_key, projection, keep=8)
    return projection


def resolve_method(method: str, n_fit: int) -> str:
    """The method "auto" stands for when `n_fit` items are to be fitted; checks the others."""
    has_umap = importlib.util.find_spec("umap") is not None
    if method == "auto":
        return "umap" if has_umap else "tsne" if n_fit <= TSNE_AUTO_MAX else "pca"
    if method == "umap" and not has_umap:
        raise ValueError("method='umap' needs umap-learn, which is not installed here "
                         "(pip install umap-learn); use method='tsne' or 'pca'")
    if method not in METHOD_NAMES:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def features_key(session) -> str:
    """A fingerprint of what the learner sees: the representation's, or the pool's own."""
    with _LOCK:
        key = _FEATURE_KEYS.get(session)
    if key is None:
        rep = session.inputs.representation()
        key = rep.fingerprint if rep is not None else pool_fingerprint(session.pool, "raw")
        with _LOCK:
            _FEATURE_KEYS[session] = key
    return key


def _remember(cache: OrderedDict, key, value, *, keep: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > keep:
        cache.popitem(last=False)


def _flat(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X.reshape(len(X), -1)


def _fixed_order(n: int) -> np.ndarray:
    """A seeded permutation of the pool: its head is the sample fitted and drawn."""
    return np.random.default_rng(0).permutation(n)


def _pca(F: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    out = np.zeros((len(F), 2), dtype=np.float32)
    k = min(2, F.shape[1], len(F) - 1)
    if k < 1:
        return out
    fit = F if len(F) <= PCA_FIT_MAX else F[np.sort(_fixed_order(len(F))[:PCA_FIT_MAX])]
    out[:, :k] = PCA(k, random_state=0).fit(fit).transform(F)
    return out


def _threads() -> int:
    """Half the cores: t-SNE's threads spin, and the kernel's trainer and watcher need one."""
    return max(1, (os.cpu_count() or 1) // 2)


def _tsne(F: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    if len(F) < 5:  # too few for a perplexity: the principal components say as much
        return _pca(F)
    with threadpool_limits(_threads()):
        return TSNE(2, perplexity=min(30.0, (len(F) - 1) / 3), init="pca", random_state=0,
                    max_iter=TSNE_ITERATIONS, n_jobs=_threads()).fit_transform(F).astype(np.float32)


def _umap(F: np.ndarray) -> np.ndarray:  # pragma: no cover - umap-learn is optional
    import umap

    if len(F) < 5:
        return _pca(F)
    return umap.UMAP(n_components=2, n_neighbors=min(15, len(F) - 1),
                     random_state=0).fit_transform(F).astype(np.float32)


def _place(features, fitted, fitted_xy, positions) -> np.ndarray:
    """Positions of items the projection was not fitted on: the distance-weighted mean of
    their nearest fitted items' positions."""
    from sklearn.neighbors import NearestNeighbors

    k = min(PLACE_NEIGHBORS, len(fitted))
    dist, index = NearestNeighbors(n_neighbors=k).fit(features[fitted]).kneighbors(features[positions])
    weights = 1 / (dist + 1e-6)
    return (np.einsum("ik,ikj->ij", weights, fitted_xy[index]) / weights.sum(1, keepdims=True)
            ).astype(np.float32)


def _plotted(session, projection: Projection, sample: int) -> np.ndarray:
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
    order = _fixed_order(n)
    rest = order[~is_labeled[order]][:sample - len(labeled)]
    return np.sort(np.concatenate([labeled, rest]))


def _unlabeled_name(class_names) -> str:
    return "unlabeled" if "unlabeled" not in class_names else "(no label)"


def _points(session, positions, xy, projection: Projection, color: str) -> pd.DataFrame:
    """One row per point: item_id, x, y, label, prediction and the colour's value."""
    pool = session.pool
    names = session.class_names
    unlabeled = _unlabeled_name(names)
    ids = np.asarray(pool.item_ids, dtype=object)[positions]
    labels = session.labels
    frame = pd.DataFrame({"item_id": ids, "x": xy[:, 0].astype(float), "y": xy[:, 1].astype(float),
                          "label": [str(labels[i]) if i in labels else unlabeled for i in ids]})
    proba = session.pool_proba(positions)
    if color in ("prediction", "uncertainty") and proba is None:
        raise ValueError(f"color={color!r} needs a trained model and there is none yet: label a few "
                         "items of at least two classes and call session.retrain() first")
    if proba is None:
        frame["prediction"] = "no model yet"
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
    if not {"item_id", "score"} <= set(table.columns):
        raise RuntimeError(f"suspects() must return item_id and score columns, got {list(table.columns)}")
    return pd.Series(table["score"].astype(float).to_numpy(), index=table["item_id"].astype(str))


def _palette(n: int) -> list[str]:
    base = TABLEAU if n <= len(TABLEAU) else CATEGORY20
    return [base[i % len(base)] for i in range(n)]


def _describe_features(session, features) -> str:
    rep = session.inputs.representation() if session.inputs.uses_representation else None
    what = "the pool's representation" if rep is not None else "the pool's features"
    return f"{what} ({features.shape[1]}-d)"


def _chart(session, frame: pd.DataFrame, projection: Projection, color: str, *,
           n_items: int) -> alt.Chart:
    tag = projection.tag
    xf, yf = f"x_{tag}", f"y_{tag}"
    data = frame.rename(columns={"x": xf, "y": yf})
    records = data.astype(object).where(data.notna(), None).to_dict("records")  # NaN is no JSON
    names = list(session.class_names)
    name = METHOD_NAMES[projection.method]
    features = _flat(session.inputs.features())
    shown = (f"all {n_items:,} items" if len(frame) == n_items
             else f"{len(frame):,} of {n_items:,} items shown: every labeled one and a random sample")
    title = alt.Title(
        f"{session.pool.name}: {name} map of {_describe_features(session, features)}, "
        f"coloured by {color} ({shown})",
        subtitle=["drag a rectangle, then session.queue_from(chart) serves those items next"],
        anchor="start")
    if color == "label":
        unlabeled = _unlabeled_name(names)
        colour = alt.Color("label:N", title="label", scale=alt.Scale(
            domain=[*names, unlabeled], range=[*_palette(len(names)), GREY]))
    elif color == "prediction":
        colour = alt.Color("prediction:N", title="prediction",
                           scale=alt.Scale(domain=names, range=_palette(len(names))))
    elif color == "uncertainty":
        colour = alt.Color("uncertainty:Q", title="uncertainty",
                           scale=alt.Scale(scheme="viridis", domain=[0, 1 - 1 / len(names)]))
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


# -- from a rectangle to a queue --------------------------------------------------------------
def queue_from(session, selection, *, role: str = "map") -> list[str]:
    """Serve the items picked on a map next, in this `role` (see `Session.focus`); returns
    their ids, in pool order.

    `selection`: the JupyterChart `data_map` returned (its brush's rectangle: the points of
    that chart inside it), the brush's value (`chart.selections.brush.value`, a dict
    {"x_<tag>": [lo, hi], "y_<tag>": [lo, hi]}, or {"x": ..., "y": ...} for this session's
    latest map: the points of the latest map of that projection inside it), or item ids.
    A chart or selection from a map of other features (another pool, representation or
    projection), an empty selection, or ids not in the pool raise ValueError."""
    ids, reason = _selected(session, selection)
    if not ids:
        raise ValueError("no items are inside the rectangle: drag a rectangle around some points "
                         "on the map first")
    missing = [i for i in ids if i not in session.pool]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (f" and {len(missing) - 10} more"
                                                        if len(missing) > 10 else "")
        raise ValueError(f"{len(missing)} item id(s) are not in the pool {session.pool.name!r}: {shown}")
    session.focus(ids, role=role, reasons=dict.fromkeys(ids, reason))
    return ids


def _selected(session, selection) -> tuple[list[str], str]:
    """The item ids a selection picks, and why they are shown."""
    if isinstance(selection, alt.JupyterChart):
        return _from_chart(session, selection)
    if isinstance(selection, alt.TopLevelMixin):
        raise ValueError("pass the JupyterChart that data_map returned: its brush holds the "
                         "rectangle (an Altair chart alone has no selection)")
    value = getattr(selection, "value", selection) if hasattr(selection, "store") else selection
    if isinstance(value, Mapping):
        return _from_value(session, dict(value))
    if selection is None:
        raise ValueError(EMPTY_SELECTION)
    if isinstance(selection, pd.DataFrame):
        if "item_id" not in selection:
            raise ValueError("a DataFrame of items needs an item_id column")
        selection = selection["item_id"]
    if isinstance(selection, str | bytes):
        selection = [selection]
    if not isinstance(selection, Iterable):
        raise TypeError(f"queue_from takes a data_map chart, its brush's value or item ids, got "
                        f"{type(selection).__name__}")
    ids = list(dict.fromkeys(str(i) for i in selection))
    if not ids:
        raise ValueError("no item ids given: pick some items first")
    return ids, "map: picked on the map"


def _from_chart(session, widget) -> tuple[list[str], str]:
    chart = widget.chart
    meta = _meta(chart)
    if meta is None:
        raise ValueError("this chart is not a map from data_map (it carries no workbench map "
                         "metadata); draw one with data_map(session)")
    _check_features(session, meta["features"], f"this map (of pool {meta['pool']!r}, "
                                                f"{meta['n_items']:,} items)")
    brush = getattr(widget.selections, "brush", None)
    if brush is None:
        raise ValueError("this chart has no brush selection; draw a map with data_map(session)")
    value = dict(brush.value or {})
    points = pd.DataFrame(list(chart.data.values)).rename(columns={meta["x"]: "x", meta["y"]: "y"})
    return _inside(points, value, meta["x"], meta["y"], meta["method"])


def _from_value(session, value: dict) -> tuple[list[str], str]:
    if not value:
        raise ValueError(EMPTY_SELECTION)
    keys = sorted(value)
    if keys == ["x", "y"] or set(keys) <= {"x", "y"}:
        with _LOCK:
            tag = _LATEST.get(session)
        if tag is None:
            raise ValueError("no map of this session to read the rectangle on: draw one with "
                             "data_map(session) first")
        xf, yf = "x", "y"
    else:
        tags = {k[2:] for k in keys if k[:2] in ("x_", "y_")}
        if len(tags) != 1 or any(k[:2] not in ("x_", "y_") for k in keys):
            raise ValueError(f"a map selection is keyed by the map's fields (x_<tag>, y_<tag>, as "
                             f"chart.selections.brush.value gives it), got keys {keys}")
        (tag,) = tags
        xf, yf = f"x_{tag}", f"y_{tag}"
    with _LOCK:
        record = _MAPS.get(tag)
    if record is None:
        raise ValueError(f"this selection comes from a map (projection {tag}) this kernel did not "
                         "draw, or no longer remembers; draw the map again with data_map(session)")
    key, points = record
    _check_features(session, key, f"this selection's map (projection {tag})")
    method = next((p.method for p in list(_PROJECTIONS.values()) if p.tag == tag), "")
    return _inside(points, value, xf, yf, method)


def _check_features(session, key: str, what: str) -> None:
    mine = features_key(session)
    if key != mine:
        raise ValueError(f"{what} was drawn from other features than this session's (pool "
                         f"{session.pool.name!r}, {len(session.pool):,} items): it comes from "
                         f"another pool or representation (features {key[:10]}..., this "
                         f"session's {mine[:10]}...); draw a map of this session with "
                         "data_map(session)")


def _meta(chart) -> dict | None:
    usermeta = getattr(chart, "usermeta", alt.Undefined)
    if usermeta is alt.Undefined or not isinstance(usermeta, Mapping):
        return None
    meta = usermeta.get("workbench")
    return meta if isinstance(meta, Mapping) and meta.get("kind") == "data_map" else None


def _inside(points: pd.DataFrame, value: dict, xf: str, yf: str, method: str) -> tuple[list[str], str]:
    """Ids of the points inside the rectangle `value` ({field: [lo, hi]}, either order)."""
    if not value:
        raise ValueError(EMPTY_SELECTION)
    unknown = set(value) - {xf, yf}
    if unknown:
        raise ValueError(f"the selection names fields {sorted(unknown)} that this map does not "
                         f"have (its fields: {xf!r}, {yf!r}): it comes from another map")
    inside = np.ones(len(points), dtype=bool)
    bounds = []
    for field_name, column in ((xf, "x"), (yf, "y")):
        if field_name not in value:
            continue
        interval = list(value[field_name])
        if len(interval) != 2:
            raise ValueError(f"an interval is [low, high], got {value[field_name]!r} for {field_name!r}")
        lo, hi = sorted(float(v) for v in interval)
        coords = points[column].to_numpy(dtype=float)
        inside &= (coords >= lo) & (coords <= hi)
        bounds.append(f"{column} {lo:.3g}..{hi:.3g}")
    where = f"the {METHOD_NAMES.get(method, '')} map".replace("the  map", "the map")
    return (points["item_id"][inside].astype(str).tolist(),
            f"map: inside the rectangle drawn on {where} ({', '.join(bounds)})")
