"""workbench: a Jupyter-native active-learning workbench.

Label what the model is least sure of, keep every label's history in a Parquet event
log, retrain on cue, and watch loss and accuracy as the labels grow.
"""

from workbench import datasets, strategies
from workbench.learners import TorchClassifier, features_for, logistic_regression, make_learner
from workbench.pool import Pool
from workbench.queue import QueueItem
from workbench.session import Session
from workbench.simulate import labels_to_reach, simulate
from workbench.store import LabelStore, SchemaVersionError, StoreError

__version__ = "0.1.0"


def __getattr__(name):
    # The widget and the charts pull in anywidget and Altair: import them on first use, so
    # `import workbench` stays light for scripts, the CLI and background workers.
    if name == "LabelWidget":
        from workbench.widgets import LabelWidget

        return LabelWidget
    if name == "charts":
        import workbench.charts as charts

        return charts
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


__all__ = [
    "LabelStore",
    "LabelWidget",
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
    "make_learner",
    "simulate",
    "strategies",
]
