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

__all__ = [
    "LabelStore",
    "Pool",
    "QueueItem",
    "SchemaVersionError",
    "Session",
    "StoreError",
    "TorchClassifier",
    "datasets",
    "features_for",
    "labels_to_reach",
    "logistic_regression",
    "make_learner",
    "simulate",
    "strategies",
]
