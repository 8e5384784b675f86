"""A trained `Model`'s whole predict path as one ONNX graph, for running it without the
workbench, PyTorch or scikit-learn: wherever an ONNX runtime runs.

`to_onnx(model)` writes, node for node, what `model.predict_proba` computes from the fitted
arrays: the encoder of the pool's representation (or the flattening of images that a plain
scikit-learn learner gets), the learner, and the placement of the learner's columns in the
session's class order, so that its probabilities are the Python path's up to float32
rounding (within 1e-5, typically 1e-6). The graph reads one input and gives two outputs:

- "items": float32 (N, *model.signature.shape), a batch of items as the pool's features;
- "probabilities": float32 (N, len(model.classes)), columns in `model.classes` order, 0 for
  a class the learner never saw (as `Model.align`);
- "class_index": int64 (N,), the most probable column (the first of equal ones, as numpy).

A multi-label model's (`MultiLabelHead`) probabilities are each class's own, sigmoid(X @ W
+ b), not summing to 1; its classes are those at the learner's threshold (`learner.params.threshold` in
config.json), "class_index" only the likeliest of them.

The class names are in the metadata, "classes": a JSON list of `str(c)` in column order.

What it builds from: the default `LightHead`, scikit-learn's `LogisticRegression` and
`TorchClassifier`'s built-in networks are written by hand from their weights (one product
and a softmax; the ensembles' convolutions and grouped dense layers), the three encoders of
`workbench.data.encoders` likewise; any other scikit-learn classifier goes through
skl2onnx's converter and is spliced in after the preprocessing. A `TorchClassifier` with a
user `module=`, and a learner skl2onnx cannot convert, raise ValueError. Only standard
operators (opset 17, plus "ai.onnx.ml" where skl2onnx uses it), nothing onnxruntime-specific.

What stays outside the graph, because it is not arithmetic on arrays: reading raw items into
features. Image files are decoded and divided by `signature.image_scale` before they are
fed; a table's rows are fed as their `signature.feature_names` columns, in that order; a
text pool's graph reads the pool's text features (TF-IDF + LSA from `signature.text`, or
sentence embeddings), not texts. The Python path's refusal of NaN and infinite features is
also left out: such an item gets NaN probabilities.

Feed images in batches of a few hundred: the patch encoder's response maps are the largest
tensors, N x atoms x H' x W' floats (0.5 MB per 28 x 28 item for each of several maps), so
10,000 items in one run need tens of GB, and runs of 64 to 1,000 items are as fast.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from workbench.data.encoders import MAX_SIDE, PatchEncoder, UnitEncoder, VectorEncoder
from workbench.learn.head import LightHead
from workbench.learn.onnx_encoder import FEATURES, OnnxEncoder, encoder_graph
from workbench.learn.torch_classifier import TorchClassifier

__all__ = ["OPSET", "to_onnx"]

OPSET = 17  # of the default domain: onnxruntime 1.17, the oldest this package allows, runs it


def to_onnx(model, *, embed_encoder: bool = False) -> onnx.ModelProto:
    """The predict path of `model` (a `workbench.learn.model.Model`) as a checked ONNX model:
    "items" in, "probabilities" and "class_index" out (see the module notes). A pretrained
    encoder stays outside ("items" are then its vectors) unless `embed_encoder`
    (workbench.learn.onnx_encoder)."""
    g = _Graph()
    shape = tuple(int(d) for d in model.signature.shape)
    embedded = _embedded(model.encoder, shape, embed_encoder)
    if embedded is not None:
        features = g.splice(embedded.graph, "items", "encoder/")[0]
        features = g.op("Identity", features, out=FEATURES)
        feature_shape = (int(model.learner.n_features_in_),)
    else:
        if hasattr(model.encoder, "spec"):  # a pretrained encoder stays outside: "items" are its vectors
            shape = (int(model.learner.n_features_in_),)
        features, feature_shape = _learner_inputs(g, model, "items", shape)
    raw, columns = _learner_proba(g, model.learner, features, feature_shape)
    # The learner's columns put in the session's class order: align() applied to the
    # identity is the 0/1 matrix that does it, so the mapping is the Python path's own, and
    # a product with it is exact (each output column sums one probability and zeros).
    learner_classes = len(model.learner.classes_)
    placement = columns @ model.align(np.eye(learner_classes, dtype=np.float32))
    g.op("MatMul", raw, placement.astype(np.float32), out="probabilities")
    g.op("ArgMax", "probabilities", axis=1, keepdims=0, out="class_index")

    graph = helper.make_graph(
        g.nodes, "workbench_model",
        [helper.make_tensor_value_info("items", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(model.classes)]),
         helper.make_tensor_value_info("class_index", TensorProto.INT64, ["N"])],
        initializer=g.initializers,
        # the embedded encoder's output, named so a loaded bundle can run the graph up to it
        value_info=[] if embedded is None else [helper.make_tensor_value_info(
            FEATURES, TensorProto.FLOAT, ["N", int(model.learner.n_features_in_)])])
    opsets = [helper.make_opsetid(domain, version) for domain, version in g.opsets.items()]
    exported = helper.make_model(graph, opset_imports=opsets, producer_name="workbench",
                                 ir_version=helper.find_min_ir_version_for(opsets),
                                 doc_string=repr(model))
    helper.set_model_props(exported, {"classes": json.dumps([str(c) for c in model.classes])})
    onnx.checker.check_model(exported, full_check=True)
    return exported


def _embedded(encoder, shape: tuple, embed: bool):
    """The ONNX model of a pretrained encoder to splice in front (asked for, or a bundle's
    embedded one again), else None."""
    if isinstance(encoder, OnnxEncoder):
        return encoder.part
    if embed and hasattr(encoder, "spec"):
        return encoder_graph(encoder, shape, OPSET)
    if embed:
        raise ValueError("embed_encoder=True is for a pretrained image encoder (representation=a torch "
                         "module, 'timm:...', 'torchvision:...'); this model's encoder is inside "
                         "the graph already" if encoder is not None else "this model has no encoder")
    return None


class _Graph:
    """Nodes and initializers, appended in the order the Python path computes them."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.opsets = {"": OPSET}
        self._ids = itertools.count()

    def op(self, op_type: str, *inputs, out: str | None = None, **attributes) -> str:
        """Append one node; `inputs` are tensor names or arrays (stored as initializers,
        a Python float as float32). Returns the output's name."""
        out = out or f"{op_type.lower()}_{next(self._ids)}"
        names = [x if isinstance(x, str) else self.const(x) for x in inputs]
        self.nodes.append(helper.make_node(op_type, names, [out], name=out, **attributes))
        return out

    def const(self, value) -> str:
        array = np.asarray(value, dtype=np.float32 if isinstance(value, float) else None)
        name = f"const_{next(self._ids)}"
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def splice(self, graph: onnx.GraphProto, feed: str, prefix: str) -> list[str]:
        """Append another graph whose one input is fed by tensor `feed`, its names prefixed
        so none clash with ours; returns its outputs' names."""
        graph = onnx.compose.add_prefix_graph(graph, prefix)
        self.nodes.append(helper.make_node("Identity", [feed], [graph.input[0].name]))
        self.nodes.extend(graph.node)
        self.initializers.extend(graph.initializer)
        return [o.name for o in graph.output]


# -- what the learner reads: the representation, or the items' own features ----------------
def _learner_inputs(g: _Graph, model, x: str, shape: tuple) -> tuple[str, tuple]:
    """`Model.learner_inputs` in the graph; returns the tensor and one row's shape."""
    encoder = model.encoder
    if encoder is None:  # features_for: images stay images only for learners that take them
        if len(shape) > 1 and not getattr(model.learner, "accepts_images", False):
            return g.op("Flatten", x, axis=1), (math.prod(shape),)
        return x, shape
    if hasattr(encoder, "spec"):  # a pretrained model (workbench.data.pretrained): outside the graph
        return x, shape
    if isinstance(encoder, PatchEncoder):
        return _patch_features(g, encoder, x, shape)
    flat = g.op("Flatten", x, axis=1)
    if isinstance(encoder, VectorEncoder):
        projection = encoder.projection
        if projection["components"].size:
            return _project(g, flat, projection), (projection["components"].shape[1],)
        return _standardise(g, flat, projection), (math.prod(shape),)
    if isinstance(encoder, UnitEncoder):
        return _unit(g, flat), (math.prod(shape),)
    raise ValueError(f"cannot export the {encoder.name!r} representation encoder to ONNX")


def _patch_features(g: _Graph, encoder: PatchEncoder, x: str, shape: tuple) -> tuple[str, tuple]:
    """PatchEncoder.transform: _prepare, _encode, _finish, step by step."""
    x, (channels, h, w) = _channels_first(g, x, shape)
    if max(h, w) > MAX_SIDE:  # F.interpolate(mode="area") is adaptive average pooling
        f = MAX_SIDE / max(h, w)
        size = (max(1, round(h * f)), max(1, round(w * f)))
        x, (h, w) = _adaptive_avg_pool(g, x, (h, w), size), size
    p = int(encoder.patch)
    n_values = channels * p * p
    filters = np.asarray(encoder.filters, dtype=np.float32)
    # as PatchEncoder._encode does: conv(x, f) - (patch mean) * sum(f) = conv(x, f - mean(f))
    centred = filters - filters.mean(axis=(1, 2, 3), keepdims=True)
    bias = np.asarray(encoder.bias, dtype=np.float32)[None, :, None, None]
    # each patch's mean and standard deviation, as pooled maps
    window = dict(kernel_shape=[p, p], strides=[1, 1])
    mean = g.op("ReduceMean", g.op("AveragePool", x, **window), axes=[1], keepdims=1)
    square = g.op("ReduceMean", g.op("AveragePool", g.op("Mul", x, x), **window), axes=[1], keepdims=1)
    variance = g.op("Relu", g.op("Sub", square, g.op("Mul", mean, mean)))  # clamp_min(0)
    std = g.op("Sqrt", g.op("Add", g.op("Div", g.op("Mul", variance, float(n_values)),
                                        float(n_values - 1)), 0.01))
    z = g.op("Sub", g.op("Div", g.op("Conv", x, centred), std), bias)
    # softshrink(z) and relu(|z| - a), pooled over the four quadrants. These maps are the
    # largest tensors, and passes over them most of the time, so with fewer passes, bit for
    # bit the same: softshrink(z) = z - clip(z, -a, a) (onnxruntime's Shrink operator took
    # 60% of the whole graph's time) and relu(|z| - a) = |softshrink(z)| (negation rounds
    # symmetrically).
    maps = (h - p + 1, w - p + 1)
    shrunk = g.op("Sub", z, g.op("Clip", z, -0.25, 0.25))
    shrink = _adaptive_avg_pool(g, shrunk, maps, (2, 2))
    magnitude = _adaptive_avg_pool(g, g.op("Abs", shrunk), maps, (2, 2))
    both = g.op("Concat", g.op("Add", magnitude, shrink), g.op("Sub", magnitude, shrink), axis=1)
    pooled = g.op("Div", g.op("Flatten", both, axis=1), 2.0)
    projected = _project(g, pooled, encoder.projection)
    return _unit(g, projected), (encoder.projection["components"].shape[1],)


def _channels_first(g: _Graph, x: str, shape: tuple) -> tuple[str, tuple]:
    """Images N x H x W (one channel) or N x H x W x C as N x C x H x W."""
    if len(shape) == 2:
        return g.op("Unsqueeze", x, np.array([1], dtype=np.int64)), (1, *shape)
    h, w, channels = shape
    return g.op("Transpose", x, perm=[0, 3, 1, 2]), (channels, h, w)


def _adaptive_avg_pool(g: _Graph, x: str, size: tuple, out: tuple) -> str:
    """torch's adaptive_avg_pool2d of N x C x H x W to `out`, as a product with a pooling
    matrix along each side: its bins overlap where the sizes do not divide (23 -> 2 takes
    rows 0-11 and 11-22), which no ONNX pooling operator expresses. Einsum rather than
    MatMul: onnxruntime's MatMul refuses a batch of 0 items when the matrix comes first."""
    rows, cols = (_pooling_matrix(n, m) for n, m in zip(size, out))
    x = g.op("Einsum", x, np.ascontiguousarray(cols.T), equation="nchw,wj->nchj")
    return g.op("Einsum", x, rows, equation="nchj,ih->ncij")


def _pooling_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): row i averages torch's bin i, [floor(i n_in / n_out), ceil((i+1) n_in / n_out))."""
    matrix = np.zeros((n_out, n_in), dtype=np.float32)
    for i in range(n_out):
        start, end = i * n_in // n_out, -(-(i + 1) * n_in // n_out)
        matrix[i, start:end] = 1 / (end - start)
    return matrix


def _standardise(g: _Graph, x: str, projection: dict) -> str:
    mean, scale = (np.asarray(projection[k], dtype=np.float32) for k in ("mean", "scale"))
    return g.op("Div", g.op("Sub", x, mean), scale)


def _project(g: _Graph, x: str, projection: dict) -> str:
    """_Projection.apply: standardise, then the (soft-whitened) PCA components."""
    components = np.asarray(projection["components"], dtype=np.float32)
    return g.op("MatMul", _standardise(g, x, projection), components)


def _unit(g: _Graph, x: str) -> str:
    """Rows L2-normalised, as encoders._unit."""
    norm = g.op("ReduceL2", x, axes=[1], keepdims=1)
    return g.op("Div", x, g.op("Add", norm, 1e-12))


# -- the learner ---------------------------------------------------------------------------------
def _learner_proba(g: _Graph, learner, x: str, shape: tuple) -> tuple[str, np.ndarray]:
    """The learner's probabilities, and the 0/1 matrix placing their columns among
    `learner.classes_` (the identity but for LightHead, whose head numbers the classes)."""
    identity = np.eye(len(learner.classes_), dtype=np.float32)
    if isinstance(learner, LightHead):  # _proba: out[:, head.classes_] = _softmax_proba(head, X)
        head = learner.head_
        return _linear_softmax(g, x, head), identity[np.asarray(head.classes_, dtype=np.int64)]
    if _is_softmax_regression(learner):
        return _linear_softmax(g, x, learner), identity
    if type(learner).__name__ == "MultiLabelHead":  # one sigmoid per class: sigmoid(X @ coef + b)
        coef, intercept = (np.asarray(a, dtype=np.float32) for a in (learner.coef_, learner.intercept_))
        return g.op("Sigmoid", g.op("Gemm", x, coef, intercept)), identity
    if isinstance(learner, TorchClassifier):
        return _torch_proba(g, learner, x, shape), identity
    if getattr(learner, "reads_items", False):  # learner="finetune" (workbench.learn.finetune)
        raise ValueError("a fine-tuned network (learner='finetune') is not written to ONNX: export a "
                         "session with the default learner (a light head on the pretrained features)")
    return _sklearn_proba(g, learner, x, math.prod(shape)), identity


def _is_softmax_regression(learner) -> bool:
    """A LogisticRegression whose predict_proba is the softmax of its decision function:
    two classes ([1 - sigmoid(d), sigmoid(d)] is the softmax of [0, d]), or more with a
    multinomial fit. One-vs-rest fits (scikit-learn < 1.8's multi_class="ovr", liblinear)
    normalise sigmoids instead and go through skl2onnx."""
    from sklearn.linear_model import LogisticRegression

    if not isinstance(learner, LogisticRegression):
        return False
    ovr = getattr(learner, "multi_class", None) == "ovr" or learner.solver == "liblinear"
    return len(learner.classes_) <= 2 or not ovr


def _linear_softmax(g: _Graph, x: str, regression) -> str:
    """head._softmax_proba in float32: softmax(X @ coef.T + intercept)."""
    coef = np.asarray(regression.coef_, dtype=np.float32)
    intercept = np.asarray(regression.intercept_, dtype=np.float32)
    if len(coef) == 1:  # two classes, one logit d: the logits are [0, d]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([np.zeros(1, np.float32), intercept])
    return g.op("Softmax", g.op("Gemm", x, coef, intercept, transB=1), axis=1)


def _torch_proba(g: _Graph, learner: TorchClassifier, x: str, shape: tuple) -> str:
    """TorchClassifier.predict_proba: standardise, the ensemble's logits (N, members,
    classes), a softmax per member, the mean over members."""
    from workbench.learn.networks import EnsembleCNN, EnsembleMLP

    if learner.module is not None:
        raise ValueError("cannot export a TorchClassifier with a user module= to ONNX: only its "
                         "built-in networks are written out; export your module with torch.onnx "
                         "and add the standardisation (mean_, std_) and the ensemble's mean")
    net = learner.net_
    x = g.op("Div", g.op("Sub", x, np.asarray(learner.mean_, np.float32)),
             np.asarray(learner.std_, np.float32))
    members = net.members
    if isinstance(net, EnsembleMLP):
        first = net.first
        hidden = g.op("Gemm", x, _weights(first.weight), _weights(first.bias), transB=1)
        per_member = first.out_features // members
        h = g.op("Reshape", hidden, np.array([0, members, per_member], dtype=np.int64))
        logits, _ = _layers(g, h, net.rest, (members, per_member))
    elif isinstance(net, EnsembleCNN):
        x, (channels, height, width) = _channels_first(g, x, shape)
        x = g.op("Tile", x, np.array([1, members, 1, 1], dtype=np.int64))  # every member, the same images
        h, maps = _layers(g, x, net.features, (channels * members, height, width))
        h = g.op("Reshape", h, np.array([0, members, math.prod(maps) // members], dtype=np.int64))
        logits, _ = _layers(g, h, net.head, (members, math.prod(maps) // members))
    else:
        raise ValueError(f"cannot export a TorchClassifier whose network is a {type(net).__name__}")
    return g.op("ReduceMean", g.op("Softmax", logits, axis=2), axes=[1], keepdims=0)


def _layers(g: _Graph, x: str, layers, shape: tuple) -> tuple[str, tuple]:
    """The built-in networks' layers at inference (dropout is the identity); `shape` is one
    item's, (channels, H, W) or (members, features), tracked for the pooling matrices."""
    from torch import nn

    from workbench.learn.networks import GroupedLinear

    for layer in layers:
        if isinstance(layer, nn.Dropout):
            continue
        if isinstance(layer, nn.ReLU):
            x = g.op("Relu", x)
        elif isinstance(layer, nn.Conv2d) and isinstance(layer.padding, tuple) \
                and layer.padding_mode == "zeros":
            x = g.op("Conv", x, _weights(layer.weight), _weights(layer.bias),
                     kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                     pads=list(layer.padding) * 2, dilations=list(layer.dilation), group=layer.groups)
            sides = [(n + 2 * pad - d * (k - 1) - 1) // s + 1 for n, pad, d, k, s in zip(
                shape[1:], layer.padding, layer.dilation, layer.kernel_size, layer.stride)]
            shape = (layer.out_channels, *sides)
        elif isinstance(layer, nn.MaxPool2d) and not layer.ceil_mode and layer.dilation == 1:
            kernel, stride, pad = (_pair(v) for v in (layer.kernel_size, layer.stride, layer.padding))
            x = g.op("MaxPool", x, kernel_shape=kernel, strides=stride, pads=pad * 2)
            shape = (shape[0], *[(n + 2 * q - k) // s + 1
                                 for n, q, k, s in zip(shape[1:], pad, kernel, stride)])
        elif isinstance(layer, nn.AdaptiveAvgPool2d):
            out = tuple(_pair(layer.output_size))
            x, shape = _adaptive_avg_pool(g, x, shape[1:], out), (shape[0], *out)
        elif isinstance(layer, GroupedLinear):  # einsum("bmi,mio->bmo") + bias
            x = g.op("Add", g.op("Einsum", x, _weights(layer.weight), equation="bmi,mio->bmo"),
                     _weights(layer.bias))
            shape = (shape[0], layer.weight.shape[2])
        else:
            raise ValueError(f"cannot export a TorchClassifier layer {layer} to ONNX")
    return x, shape


def _weights(parameter) -> np.ndarray:
    return parameter.detach().cpu().numpy().astype(np.float32)


def _pair(value) -> list[int]:
    return [int(v) for v in value] if isinstance(value, tuple | list) else [int(value)] * 2


def _sklearn_proba(g: _Graph, learner, x: str, n_features: int) -> str:
    """Any other scikit-learn classifier, converted by skl2onnx and spliced in: its
    probabilities output (columns in learner.classes_ order, no ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    try:
        converted = convert_sklearn(
            learner, initial_types=[("features", FloatTensorType([None, n_features]))],
            options={id(learner): {"zipmap": False}}, target_opset=OPSET)
    except Exception as e:  # skl2onnx's reasons come as several exception types
        raise ValueError(f"cannot export a {type(learner).__name__} to ONNX: {e}") from e
    for opset in converted.opset_import:
        if opset.domain not in ("", "ai.onnx.ml"):
            raise ValueError(f"cannot export a {type(learner).__name__} to ONNX: skl2onnx's graph "
                             f"uses operators of the {opset.domain!r} domain, not standard ones")
        g.opsets[opset.domain] = max(g.opsets.get(opset.domain, 0), opset.version)
    _label, probabilities = g.splice(converted.graph, x, "sklearn/")
    return probabilities
