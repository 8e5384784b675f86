"""workbench: a Jupyter-native active-learning workbench.

Label what the model is least sure of, keep every label's history in a Parquet event
log, retrain on cue, and watch loss and accuracy as the labels grow.

The packages, imports pointing one way: `data` (pools) and `store` (the label log) know
nothing else; `learn` (learners, strategies, the queue) uses `data`; `loop` (the session)
uses all three; `ui` (widget, charts) uses `loop`.
"""

import sys as _sys

from workbench.data import datasets
from workbench.data.pool import Pool
from workbench.learn import registry as models
from workbench.learn import strategies
from workbench.learn.bundle import BundleError, load_model
from workbench.learn.head import LightHead
from workbench.learn.learners import TorchClassifier, features_for, logistic_regression, make_learner
from workbench.learn.model import Model
from workbench.learn.queue import QueueItem
from workbench.loop.session import Session
from workbench.loop.simulate import labels_to_reach, simulate
from workbench.store import LabelStore, SchemaVersionError, StoreError

__version__ = "0.1.0"

# `workbench.strategies` and `workbench.datasets` are part of the public API as modules, so
# `from workbench.strategies import margin` keeps working where they now live in packages.
_sys.modules[__name__ + ".strategies"] = strategies
_sys.modules[__name__ + ".datasets"] = datasets
_sys.modules[__name__ + ".models"] = models  # the model registry: push, list_models, show, pull


def __getattr__(name):
    # The widget and the charts pull in anywidget and Altair: import them on first use, so
    # `import workbench` stays light for scripts, the CLI and background workers.
    if name == "LabelWidget":
        from workbench.ui.label_widget import LabelWidget

        return LabelWidget
    if name == "HistoryView":
        from workbench.ui.history_view import HistoryView

        return HistoryView
    if name == "charts":
        import workbench.ui.charts as charts

        return charts
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


__all__ = [
    "BundleError",
    "HistoryView",
    "LabelStore",
    "LabelWidget",
    "LightHead",
    "Pool",
    "QueueItem",
    "SchemaVersionError",
    "Session",
    "StoreError",
    "TorchClassifier",
    "charts",
    "datasets",
    "features_for",
    "labels_to_reach",
    "logistic_regression",
    "load_model",
    "make_learner",
    "models",
    "Model",
    "simulate",
    "strategies",
]
