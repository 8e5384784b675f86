"""A map of the pool as the learner sees it, and a queue drawn on it with the mouse.

    m = data_map(session, color="uncertainty")   # a JupyterChart: drag a rectangle on it
    queue_from(session, m)                       # the labeling widget serves those items next

`data_map` puts three parts together, one module each:
- workbench.ui.map_projection: the pool's features in 2-D (UMAP, t-SNE or PCA), fitted once
  and cached, with the timings that choose the method;
- workbench.ui.map_chart: which points are drawn (at most `sample`, every labeled one among
  them), their colours ("label", "prediction", "uncertainty", "suspicion") and tooltips;
- workbench.ui.map_selection: `queue_from`, from a rectangle drawn on the map (or the brush's
  value, or item ids) to the items served next.

The chart is an Altair `JupyterChart` with an interval selection named "brush"; offline, it
bundles Vega (see workbench.ui.charts).
"""

from __future__ import annotations

import altair as alt

from workbench.ui import map_chart
from workbench.ui.map_chart import COLORS
from workbench.ui.map_projection import (
    MAX_POINTS,
    METHODS,
    TSNE_AUTO_MAX,
    Projection,
    features_key,
    flat,
    projection_of,
    resolve_method,
)
from workbench.ui.map_selection import queue_from, remember_map

# Importable from here, as before the map was split into its parts.
__all__ = ["data_map", "queue_from", "projection_of", "resolve_method", "features_key", "Projection",
           "COLORS", "METHODS", "MAX_POINTS", "TSNE_AUTO_MAX"]


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
    features = flat(session.inputs.features())
    projection = projection_of(session, method, sample=sample)
    positions = map_chart.plotted(session, projection, sample)
    xy = projection.at(features, positions)
    frame = map_chart.points(session, positions, xy, projection, color)
    remember_map(session, projection, frame)
    chart = map_chart.chart(session, frame, projection, color, n_items=len(pool))
    alt.JupyterChart.enable_offline()  # Vega bundled into the widget: draws without a network
    return alt.JupyterChart(chart)
