"""A verified bundle's parts (`Bundle`) and the `Model` rebuilt from them: the input
signature, the preprocessing steps (a text vectoriser, the representation's encoder) and the
learner, from config.json and the safetensors arrays, or, for a learner with no array form,
from the ONNX graph alone (`OnnxLearner`). A bundle's task picks what rebuilds it
(`MODELS`): a boxes bundle gives a `BoxModel` (box_bundle.py), a spans bundle a `SpanModel`
(span_bundle.py). Nothing here reads or checks a
file: bundle_read.py has verified every byte before a `Bundle` exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workbench.data.tasks import BOXES, MULTI_LABEL, SINGLE, SPANS
from workbench.learn.box_bundle import box_model_from
from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_graph import OnnxLearner
from workbench.learn.bundle_layout import CONFIG, GRAPH, WEIGHTS
from workbench.learn.graph_weights import resolved
from workbench.learn.learner_state import restore_encoder, restore_learner
from workbench.learn.model import InputSignature, Model
from workbench.learn.span_bundle import span_model_from

__all__ = ["Bundle"]


@dataclass
class Bundle:
    """A verified bundle's parsed parts."""

    source: str
    config: dict
    tensors: dict[str, np.ndarray]
    card: str
    manifest: dict
    # every file as verified, the manifest too: what a copy writes; read for a model only
    # (read_bundle(keep_files=False)), without the weights' and the graph's bytes
    files: dict[str, bytes]
    reread: Callable[[str], bytes] | None = None  # a file not kept, read and verified again
    # where the graph's tensors kept in the weights file are (graph_weights.py); None: it has none
    shared_layout: dict | None = None

    @property
    def onnx(self) -> bytes:
        """The ONNX graph holding all of its data: tensors it keeps in the weights file are
        filled in from the verified weights."""
        kept = GRAPH in self.files or self.reread is None
        graph = self.files[GRAPH] if kept else self.reread(GRAPH)
        return graph if self.shared_layout is None else resolved(graph, self.tensors, self.shared_layout)

    def model(self, encoder=None):
        """The model (a `Model`, or a `BoxModel` for a boxes bundle); `encoder`: the pretrained
        encoder it reads, when no file holds it."""
        return _model_from(self, encoder)


def _model_from(bundle: Bundle, given=None):
    config = bundle.config
    task = config.get("task", SINGLE)  # bundles from before tasks are single-label
    kind = config["learner"]["type"]
    if task != TASK_OF_LEARNER.get(kind, SINGLE):
        raise BundleError(f"{CONFIG} in {bundle.source!r} says task {task!r} but its learner is a {kind}, "
                          f"the learner of a {TASK_OF_LEARNER.get(kind, SINGLE)!r} model")
    if task not in MODELS:
        raise BundleError(f"{CONFIG} in {bundle.source!r} is of a {task!r} model, which this workbench "
                          f"does not load; it loads {', '.join(map(repr, MODELS))} models")
    try:
        return MODELS[task](bundle, given)
    except BundleError:
        raise
    except Exception as e:  # whatever a crafted config or weights make the rebuild fail with
        raise BundleError(f"{CONFIG} or {WEIGHTS} in {bundle.source!r} does not describe a model this "
                          f"workbench can rebuild ({type(e).__name__}: {e})") from e


def _class_model(bundle: Bundle, given=None) -> Model:
    """A model of classes (one per item, or a multi-label set): its preprocessing steps and
    learner from config.json and the tensors, or the ONNX graph alone."""
    config, tensors = bundle.config, bundle.tensors
    text = None
    encoder = None
    for step in config["preprocessing"]:
        part = {k[len(_prefix(step)) + 1:]: v for k, v in tensors.items()
                if k.startswith(_prefix(step) + ".")}
        if step["step"] == "text-vectoriser":
            from workbench.data.text import TextVectorizer

            text = TextVectorizer.from_state(step, part)
        elif step["step"] == "representation" and step.get("in_onnx") and step["method"] == "pretrained":
            from workbench.learn.onnx_encoder import OnnxEncoder  # embedded: the graph encodes

            encoder = OnnxEncoder(bundle.onnx, restore_encoder(step, part))
        elif step["step"] == "representation":
            encoder = _available(restore_encoder(step, part), bundle.source, given)
        else:
            raise BundleError(f"unknown preprocessing step {step['step']!r} in {CONFIG}")
    signature = InputSignature.from_config(config["input"], text=text)
    classes = config["classes"]
    learner_config = config["learner"]
    if learner_config["type"] == "onnx":
        learner, encoder = OnnxLearner(bundle.onnx, classes), None
    else:
        learner = restore_learner(learner_config, {k[len("learner."):]: v for k, v in tensors.items()
                                                   if k.startswith("learner.")})
    return Model(learner, classes, signature, encoder=encoder, task=config.get("task", SINGLE),
                 info={**config.get("training", {}), "bundle": bundle.source})


def _box_model(bundle: Bundle, given=None):
    if given is not None:
        raise BundleError(f"the model in {bundle.source!r} is a boxes model, which reads images; "
                          "encoder= is for a model that reads a pretrained encoder's vectors")
    return box_model_from(bundle.source, bundle.config, bundle.tensors)


def _span_model(bundle: Bundle, given=None):
    if given is not None:
        raise BundleError(f"the model in {bundle.source!r} is a spans model, which reads texts; "
                          "encoder= is for a model that reads a pretrained encoder's vectors")
    return span_model_from(bundle.source, bundle.config, bundle.tensors)


# What a bundle's task is rebuilt by (each from a verified Bundle), and the task each learner
# type belongs to (any other: "single"); bundle_write.PARTS writes them.
MODELS = {SINGLE: _class_model, MULTI_LABEL: _class_model, BOXES: _box_model, SPANS: _span_model}
TASK_OF_LEARNER = {"MultiLabelHead": MULTI_LABEL, "BoxDetector": BOXES, "TokenTagger": SPANS,
                   "HFTokenTagger": SPANS}


def _available(encoder, source: str, given=None):
    """A pretrained encoder (`workbench.data.pretrained`) is not in the bundle, only its spec
    and weights digest: it must be on this machine (or `given`, with those weights), or the
    bundle is refused, naming it and how to fetch it."""
    check = getattr(encoder, "check", None)
    if check is None:
        if given is not None:
            raise BundleError(f"the model in {source!r} carries its own encoder; encoder= is for a "
                              "model that reads a pretrained encoder's vectors")
        return encoder
    from workbench.data.pretrained import EncoderUnavailable, pretrained

    what = (f"the model in {source!r} reads vectors of the pretrained encoder {encoder.describe()}, "
            "which a bundle does not hold")
    if given is not None:
        given = pretrained(given)
        if given.digest != encoder.digest:
            raise BundleError(f"{what}; the encoder= given, {given.describe()}, has other weights")
        return given
    try:
        return check()
    except EncoderUnavailable as e:
        also = " (load_model(..., encoder=<it>))" if encoder.spec.startswith(("module:", "callable:")) else ""
        raise BundleError(f"{what}: {e}{also}") from None


def _prefix(step: dict) -> str:
    return {"text-vectoriser": "text", "representation": "encoder"}.get(step["step"], step["step"])
