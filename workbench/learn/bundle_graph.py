"""A bundle's ONNX graph, kept inside itself: refused when it reaches outside (a tensor in
an external file other than the bundle's own weights, a custom operator set, local
functions), and run from its bytes alone,
never from a path, so onnxruntime has no file to read beside it. `OnnxLearner` is a learner
kept only as such a graph."""

from __future__ import annotations

import reprlib
import tempfile

import numpy as np

from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_layout import GRAPH
from workbench.learn.graph_weights import references

__all__ = ["ONNX_DOMAINS", "OnnxLearner", "check_graph", "onnx_session"]

ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")  # the standard operator sets; nothing custom


def check_graph(source: str, data: bytes) -> dict:
    """Refuse an ONNX graph that reaches outside itself: a tensor stored as external data
    (onnxruntime would read that file, relative to the working directory, into the model),
    an operator outside the standard domains (a custom op library), or local functions.
    What is left is arithmetic on the items; a deliberately huge graph can still use much
    memory, as any model can. The one exception: a top-level initializer may refer to a
    tensor of the bundle's own weights file (graph_weights.py); those references are
    returned, for `check_references` to hold against the weights once they are read."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf parsing: no code runs
        raise BundleError(f"{GRAPH} in {source!r} is not a valid ONNX model ({e})") from e
    for opset in model.opset_import:
        if opset.domain not in ONNX_DOMAINS:
            raise BundleError(f"{GRAPH} in {source!r} imports the operator set {opset.domain!r}; only "
                              "the standard ONNX operators are allowed")
    if len(model.functions):
        raise BundleError(f"{GRAPH} in {source!r} defines functions; a bundle's graph has none")
    for where, part in _parts(model):
        if isinstance(part, onnx.NodeProto) and part.domain not in ONNX_DOMAINS:
            raise BundleError(f"{GRAPH} in {source!r} uses the operator {part.domain}.{part.op_type} "
                              f"at {where}; only the standard ONNX operators are allowed")
        if isinstance(part, onnx.TensorProto) and where.startswith("graph.initializer["):
            continue  # a reference into the weights, or refused by `references` below
        if isinstance(part, onnx.TensorProto) and (
                part.data_location == onnx.TensorProto.EXTERNAL or len(part.external_data)):
            location = next((e.value for e in part.external_data if e.key == "location"), None)
            raise BundleError(f"{GRAPH} in {source!r} stores the tensor {reprlib.repr(part.name)} at "
                              f"{where} in an external file ({reprlib.repr(location)}); a bundle's "
                              "graph must hold all of its data")
    return references(source, model)


def _parts(message, where: str = ""):
    """(where, message) for `message` and every message inside it, at any depth. The walk
    follows the protobuf fields themselves rather than a list of the places ONNX keeps
    tensors, so none is missed: a sparse tensor's indices, a node's `tensors` or
    `sparse_tensors` attribute, a subgraph of a subgraph, a training graph. (protobuf
    refuses to parse messages nested more than 100 deep, so the recursion is bounded.)"""
    from google.protobuf.message import Message

    yield where, message
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:  # numbers, strings, bytes: nothing inside
            continue
        path = f"{where}.{descriptor.name}" if where else descriptor.name
        if isinstance(value, Message):
            yield from _parts(value, path)
        else:
            for i, item in enumerate(value):
                name = getattr(item, "name", "")
                yield from _parts(item, f"{path}[{i}]" + (f" {reprlib.repr(name)}" if name else ""))


def onnx_session(graph: bytes):
    """An onnxruntime session of `graph`, made from its bytes (never from a path), whose
    external data, if any were left, could only come from a new empty folder. check_graph
    refuses such a graph already; this is the second wall: from bytes alone, onnxruntime
    would read a relative location against the working directory."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    with tempfile.TemporaryDirectory(prefix="workbench-no-external-data-") as empty:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                         empty)
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxLearner:
    """A learner kept only as its ONNX graph (a scikit-learn classifier with no array form
    here): the whole predict path runs in onnxruntime, from items to aligned probabilities."""

    accepts_images = True  # the graph takes items as the pool holds them

    def __init__(self, graph: bytes, classes):
        self.classes_ = np.asarray(classes)
        self._session = onnx_session(graph)

    def predict_proba(self, X, batch: int = 256) -> np.ndarray:
        # in batches: a graph's intermediate maps can take megabytes per item
        X = np.ascontiguousarray(X, dtype=np.float32)
        parts = [self._session.run(["probabilities"], {"items": X[i:i + batch]})[0]
                 for i in range(0, len(X), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes_)), np.float32)
