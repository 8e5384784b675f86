"""Views of a session that live outside the loop: the labeling widget, the data map, the
history view. The loop stays headless (it imports no widget, IPython or charting library);
the `workbench.ui` package registers its views here when it is imported, and the package root
imports it, so `session.widget()` works after `import workbench` or any `from workbench...`.

    register("widget", lambda session, **kw: LabelWidget(session, **kw))
    show("widget", session)      # what Session.widget() calls

Another front end (a web app, a different widget) registers its own views the same way.
"""

from __future__ import annotations

_VIEWS: dict = {}


def register(name: str, view) -> None:
    """`view(session, *args, **kwargs)` answers `session.<name>(*args, **kwargs)`."""
    _VIEWS[name] = view


def show(name: str, session, *args, **kwargs):
    """The view `name` of `session`; a clear error when no front end registered it."""
    view = _VIEWS.get(name)
    if view is None:
        raise RuntimeError(f"session.{name}() is drawn by workbench.ui, which is not loaded: "
                           "`import workbench.ui` first (it needs ipywidgets and anywidget)")
    return view(session, *args, **kwargs)


def method(name: str, doc: str):
    """A Session method that shows the view `name` of the session."""
    def view(self, *args, **kwargs):
        return show(name, self, *args, **kwargs)
    view.__name__, view.__qualname__, view.__doc__ = name, f"Session.{name}", doc
    return view
