"""From a rectangle drawn on a map to the queue: which items a selection picks.

    queue_from(session, m)   # m: a data_map chart with a rectangle drawn on it

A selection is the chart itself (its brush's rectangle over that chart's points), the brush's
value ({"x_<tag>": [lo, hi], "y_<tag>": [lo, hi]}, read on the map of that projection this
kernel drew last, which is remembered here), or item ids. A chart or a selection from a map
of other features (another pool, representation or projection) is refused.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import altair as alt
import numpy as np
import pandas as pd

from workbench.ui.map_projection import METHOD_NAMES, Projection, features_key, method_of, remember

EMPTY_SELECTION = ("the selection is empty: drag a rectangle on the map first, then call "
                   "queue_from again")

_LOCK = threading.Lock()
_MAPS: OrderedDict[str, tuple[str, pd.DataFrame]] = OrderedDict()  # tag -> (features, points)
_LATEST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()        # session -> tag


def remember_map(session, projection: Projection, frame: pd.DataFrame) -> None:
    """A map was drawn: keep its points, so a brush's value can be read on it later."""
    with _LOCK:
        remember(_MAPS, projection.tag, (projection.features_key, frame[["item_id", "x", "y"]]),
                 keep=16)
        _LATEST[session] = projection.tag


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
    method = method_of(tag)
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
