"""What a person sees in the notebook: the labeling widget and the charts.

Traits and messages only; the front end (ESM + CSS) lives in the top-level `widgets/` folder.

Importing this package registers the session's views (`session.widget()`, `map()`,
`queue_from()`, `history_view()`) with `workbench.loop.views`, so that the loop never imports
the ui; each view imports its module (ipywidgets, anywidget, Altair) only when it is called.
"""

from workbench.loop import views as _views


def _widget(session, **kw):
    from workbench.ui.label_widget import LabelWidget

    return LabelWidget(session, **kw)


def _map(session, color: str = "label", **kw):
    from workbench.ui.data_map import data_map

    return data_map(session, color=color, **kw)


def _queue_from(session, selection, *, role: str = "map"):
    from workbench.ui.data_map import queue_from

    return queue_from(session, selection, role=role)


def _history_view(session, **kw):
    from workbench.ui.history_view import HistoryView

    return HistoryView(session, **kw)


_views.register("widget", _widget)
_views.register("map", _map)
_views.register("queue_from", _queue_from)
_views.register("history_view", _history_view)
