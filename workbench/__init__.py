"""workbench: a Jupyter-native active-learning workbench.

Label what the model is least sure of, keep every label's history in a Parquet event
log, retrain on cue, and watch loss and accuracy as the labels grow.

The packages, imports pointing one way: `data` (pools) and `store` (the label log) know
nothing else; `learn` (learners, strategies, the queue) uses `data`; `loop` (the session)
uses all three; `ui` (widget, charts) uses `loop`.

Every public name is imported on first use (PEP 562): `import workbench` costs nothing, so
the command line, scripts and background workers load torch, scikit-learn, onnx or Altair
only when they touch what needs them (`workbench log` used to take 3-5 s for that alone).
"""

import importlib as _importlib
import importlib.abc as _abc
import importlib.util as _util
import sys as _sys

from workbench._version import __version__ as __version__  # the one place it is set

# name -> (module, attribute); attribute None: the name is the module itself.
_PUBLIC = {
    "BundleError": ("workbench.learn.bundle", "BundleError"),
    "EncoderUnavailable": ("workbench.data.pretrained", "EncoderUnavailable"),
    "Box": ("workbench.data.boxes", "Box"),  # (x, y, w, h, label) of an image, in pixels
    "BoxList": ("workbench.data.boxes", "BoxList"),  # a boxes item's label
    "BoxDetector": ("workbench.learn.box_detector", "BoxDetector"),  # the boxes pools' learner
    "BoxModel": ("workbench.learn.box_model", "BoxModel"),  # what load_model gives for a boxes bundle
    # a Hugging Face token-classification model as a spans pool's learner (transformers, imported when fitted)
    "HFTokenTagger": ("workbench.learn.hf_tagger", "HFTokenTagger"),
    "HistoryView": ("workbench.ui.history_view", "HistoryView"),
    "LabelSet": ("workbench.data.tasks", "LabelSet"),  # a multi-label item's classes
    "LabelStore": ("workbench.store", "LabelStore"),
    "LabelWidget": ("workbench.ui.label_widget", "LabelWidget"),
    "LightHead": ("workbench.learn.head", "LightHead"),
    "Model": ("workbench.learn.model", "Model"),
    "MultiLabelHead": ("workbench.learn.multilabel", "MultiLabelHead"),
    "Pool": ("workbench.data.pool", "Pool"),
    "QueueItem": ("workbench.learn.queue", "QueueItem"),
    "SchemaVersionError": ("workbench.store", "SchemaVersionError"),
    "Span": ("workbench.data.spans", "Span"),  # (start, end, label) of a text, in code points
    "SpanModel": ("workbench.learn.span_model", "SpanModel"),  # what load_model gives for a spans bundle
    "SpanList": ("workbench.data.spans", "SpanList"),  # a spans item's label
    "Session": ("workbench.loop.session", "Session"),
    "StoreError": ("workbench.store", "StoreError"),
    "TokenTagger": ("workbench.learn.token_tagger", "TokenTagger"),  # the spans pools' learner
    "TorchClassifier": ("workbench.learn.learners", "TorchClassifier"),
    "charts": ("workbench.ui.charts", None),
    "datasets": ("workbench.data.datasets", None),
    "features_for": ("workbench.learn.learners", "features_for"),
    "labels_to_reach": ("workbench.loop.simulate", "labels_to_reach"),
    "load_model": ("workbench.learn.bundle", "load_model"),
    "logistic_regression": ("workbench.learn.learners", "logistic_regression"),
    "make_learner": ("workbench.learn.learners", "make_learner"),
    "pretrained": ("workbench.data.pretrained", "pretrained"),  # a pretrained encoder, with options
    "models": ("workbench.learn.registry", None),  # the model registry: push, list_models, ...
    "simulate": ("workbench.loop.simulate", "simulate"),
    "strategies": ("workbench.learn.strategies", None),
}

# Modules of the public API that live in packages now: `from workbench.strategies import
# margin` must keep working, so `workbench.<name>` imports as the module it stands for.
_ALIASES = {f"{__name__}.{name}": module for name, (module, attr) in _PUBLIC.items()
            if attr is None and name != "charts"}


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    module, attr = _PUBLIC[name]
    value = _importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    elif f"{__name__}.{name}" in _ALIASES:
        _sys.modules.setdefault(f"{__name__}.{name}", value)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted({*globals(), *__all__})


class _AliasFinder(_abc.MetaPathFinder, _abc.Loader):
    """Imports `workbench.strategies` (and the other aliases) as the module it stands for,
    without importing that module before someone asks for it."""

    aliases_workbench = True  # how a reload of this package recognises an installed finder

    def find_spec(self, fullname, path=None, target=None):
        return _util.spec_from_loader(fullname, self) if fullname in _ALIASES else None

    def create_module(self, spec):
        module = _importlib.import_module(_ALIASES[spec.name])
        self._specs = {**getattr(self, "_specs", {}), spec.name: module.__spec__}
        return module

    def exec_module(self, module):
        # The import machinery stamped the alias's spec on the real module; give it back its
        # own, so reloading and pickling by reference still find the real one.
        module.__spec__ = self._specs.pop(module.__spec__.name)


if not any(getattr(f, "aliases_workbench", False) for f in _sys.meta_path):  # once, even on reload
    _sys.meta_path.append(_AliasFinder())

# The session's views (widget, map, history view) are the ui's: it registers them with the
# loop (workbench.loop.views), which never imports it. Cheap: each view imports its widget
# module only when called.
_importlib.import_module("workbench.ui")

__all__ = [
    "Box",
    "BoxDetector",
    "BoxList",
    "BoxModel",
    "BundleError",
    "HFTokenTagger",
    "HistoryView",
    "LabelSet",
    "LabelStore",
    "LabelWidget",
    "LightHead",
    "Pool",
    "QueueItem",
    "SchemaVersionError",
    "Session",
    "Span",
    "SpanList",
    "SpanModel",
    "StoreError",
    "TokenTagger",
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
    "MultiLabelHead",
    "simulate",
    "strategies",
]
