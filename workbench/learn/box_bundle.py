"""A boxes model's bundle parts, and the BoxModel rebuilt from them.

The same files as every bundle (see `workbench.learn.bundle`), with what a detector needs:

- config.json: `"task": "boxes"`, the classes, the input signature (image shape, channels,
  image_scale) and the learner, `{"type": "BoxDetector", "params": {every constructor
  setting}, "labels": [...], "n_channels": C, "mean": m, "std": s}` (the standardisation
  the detector fitted), and `outputs`, which says what the graph gives and how boxes are
  read from it;
- model.safetensors: the network's state_dict, `net.<name>` (float32 weights; BatchNorm's
  step counters as int64), rebuilt into a freshly built `box_detector._network` of the
  settings' size: no pickle, nothing executed;
- model.onnx: the network from a batch of images "images" (N, H, W) or (N, H, W, C), floats in
  [0, 1] as the pool's X, to its output maps "maps" (N, 5 + classes, gh, gw): the resize to
  max_side (an area average, written as two matrix products), the standardisation and the
  padding to a multiple of 8 are inside. Decoding the peaks into boxes is not: it is
  `box_detector._decode` (described in `outputs`), the code the detector itself runs.

Before anything is written the graph runs on a few pool images and must give the torch
network's maps within 1e-4. On loading, settings are checked by name and value, the weights
against the shapes the settings give (on torch's meta device, before any memory is used),
and the labels against the classes.
"""

from __future__ import annotations

import io
import json
import math
import warnings

import numpy as np

from workbench.data.tasks import BOXES
from workbench.learn.box_detector import STRIDE, _scale
from workbench.learn.box_model import BoxModel
from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_graph import onnx_session
from workbench.learn.bundle_layout import CONFIG, WEIGHTS
from workbench.learn.model import InputSignature

__all__ = ["OUTPUTS", "box_parts", "box_model_from", "box_graph"]

MAX_CANVAS_BYTES = 2**30  # one padded image, float32: 16,384 x 16,384 pixels of one channel
MAX_WIDTH = 4096  # the network's channels (the default is 32): more is a crafted file, not a model

OUTPUTS = {
    "maps": "float32 (N, 5 + classes, gh, gw): one cell per 8 x 8 pixels of the image after its "
            "resize to max_side on its longer side (if larger), padded to a multiple of 8. Channel 0: "
            "the centre heatmap's logit; 1, 2: log of the box's width and height in cells of 8 pixels "
            "(half-size = exp(v) * 4); 3, 4: the centre's offset in its cell (x, y); 5...: the class "
            "logits, in `classes` order",
    "boxes": "not in the graph: workbench.learn.box_detector._decode reads the maps (load_model's "
             "BoxModel runs it): peaks are cells whose sigmoid(heatmap) equals its 3 x 3 maximum, the "
             "learner.params.max_boxes best; each peak offers its 3 likeliest classes (softmax of "
             "channels 5...) scored sigmoid(heatmap) x class probability, the max_boxes best of these "
             "kept; centre = ((cell column + offset x) * 8, (cell row + offset y) * 8), corners clipped to "
             "the image and divided by the resize scale; a box is shown from learner.params.threshold",
}


# -- writing ------------------------------------------------------------------------------------
def box_parts(model: BoxModel, *, training: dict | None = None, check_items=None,
              embed_encoder: bool = False) -> tuple[dict, dict[str, np.ndarray], bytes]:
    """(config.json's content, the tensors, model.onnx) of a BoxModel; with `check_items`,
    the graph must agree with the network on them first."""
    from workbench.learn.bundle_layout import FORMAT, FORMAT_VERSION

    if embed_encoder:
        raise BundleError("embed_encoder is for a model that reads a pretrained encoder's vectors; "
                          "a boxes model reads the images themselves, its whole network is in model.onnx")
    detector = model.detector
    if not hasattr(detector, "net_"):
        raise BundleError(f"cannot export this model: its {type(detector).__name__} is not fitted")
    if type(detector).__name__ != "BoxDetector" or not hasattr(detector, "mean_"):
        raise BundleError(f"cannot export this model: a boxes bundle holds a BoxDetector, not a "
                          f"{type(detector).__name__}")
    learner = {"type": "BoxDetector", "params": _params(detector), "labels": list(detector.labels_),
               "n_channels": int(detector.n_channels_), "mean": float(detector.mean_),
               "std": float(detector.std_)}
    tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in detector.net_.state_dict().items()}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": BOXES,
              "classes": list(model.classes), "input": model.signature.as_config(onnx_input="images"),
              "preprocessing": [], "learner": learner, "training": training or {}, "outputs": OUTPUTS}
    graph = box_graph(model)
    if check_items is not None and len(check_items):
        _check_agreement(model, graph, check_items)
    return config, tensors, graph


def _params(detector) -> dict:
    params = detector.get_params(deep=False)
    for key, value in params.items():
        if isinstance(value, np.generic):
            params[key] = value.item()
        elif key == "labels" and value is not None:
            params[key] = [str(v) for v in value]
        elif not isinstance(value, (int, float, str, bool, type(None))):
            params[key] = None  # a RandomState: the fitted weights are what matter, not how they came
    return params


def box_graph(model: BoxModel) -> bytes:
    """model.onnx: images (N, *signature.shape) in, the network's maps out (see the module doc)."""
    import onnx
    import torch

    from workbench.learn.onnx_graph import OPSET

    shape = tuple(model.signature.shape)
    module = _Maps(model.detector, shape).eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.zeros(2, *shape),), buffer, dynamo=False, opset_version=OPSET,
                              input_names=["images"], output_names=["maps"],
                              dynamic_axes={"images": {0: "N"}, "maps": {0: "N"}})
    except Exception as e:  # the exporter's own errors are of many kinds
        raise BundleError(f"cannot export this model: the detector's network did not convert to ONNX "
                          f"({type(e).__name__}: {e})") from e
    graph = onnx.load_model_from_string(buffer.getvalue())
    onnx.helper.set_model_props(graph, {"classes": json.dumps(list(model.classes)), "task": BOXES})
    return graph.SerializeToString()


def _check_agreement(model: BoxModel, graph: bytes, items) -> None:
    """The graph against the network on the CPU, where onnxruntime runs it and a loaded
    BoxModel predicts (a network trained on a GPU computes there in TF32 by default)."""
    import copy

    import torch

    from workbench.learn import box_model

    X = model.images(items)
    cpu = copy.deepcopy(model.detector.net_).cpu().eval()
    expected = box_model.network_maps(model.detector, X, torch, net=cpu)
    got = onnx_session(graph).run(["maps"], {"images": np.ascontiguousarray(X, dtype=np.float32)})[0]
    worst = float(np.abs(got - expected).max()) if got.shape == expected.shape else math.inf
    if not worst <= 1e-4:
        raise BundleError(f"the ONNX graph disagrees with the detector's network by {worst:.2g} on "
                          f"{len(X)} images (at most 1e-4 expected); not writing a broken bundle")


def _Maps(detector, shape: tuple):
    """The torch module model.onnx is exported from: resize (area), standardise, pad, network."""
    import copy

    import torch
    from torch import nn

    height, width = shape[:2]
    scale = _scale((height, width), detector.max_side)
    size = ((max(1, round(height * scale)), max(1, round(width * scale))) if scale < 1 else (height, width))

    class Maps(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = copy.deepcopy(detector.net_).cpu().eval()
            self.resize = scale < 1
            if self.resize:  # F.interpolate(mode="area") is an average over windows: two products
                self.register_buffer("rows", torch.from_numpy(_area(height, size[0])))
                self.register_buffer("cols", torch.from_numpy(_area(width, size[1]).T.copy()))
            self.pad = (0, -size[1] % STRIDE, 0, -size[0] % STRIDE)

        def forward(self, images):
            x = images.unsqueeze(-1) if len(shape) == 2 else images
            x = x.permute(0, 3, 1, 2)
            if self.resize:
                x = torch.matmul(torch.matmul(self.rows, x), self.cols)
            x = (x - float(detector.mean_)) / float(detector.std_)
            if any(self.pad):
                x = nn.functional.pad(x, self.pad)  # 0: the mean, once standardised, as _prepare pads
            return self.net(x)

    return Maps()


def _area(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): adaptive average pooling along one axis (what mode="area" computes)."""
    matrix = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


# -- reading ------------------------------------------------------------------------------------
def box_model_from(source: str, config: dict, tensors: dict[str, np.ndarray]) -> BoxModel:
    """The BoxModel of a verified bundle's config and tensors (config.json already checked
    against its schema); a ValueError naming what does not fit otherwise."""
    spec = config["input"]
    signature = InputSignature.from_config(spec)
    if spec["kind"] != "image" or len(signature.shape) not in (2, 3):
        raise BundleError(f"{CONFIG} in {source!r} says task 'boxes' but its input is "
                          f"{signature.describe()}; a boxes model reads images (H, W) or (H, W, C)")
    # every image it reads is padded to this canvas: a crafted shape would allocate it per image
    if math.prod(signature.shape) * 4 > MAX_CANVAS_BYTES:
        raise BundleError(f"{CONFIG} in {source!r}: input.shape is {list(signature.shape)}, a canvas of "
                          f"{math.prod(signature.shape) * 4 / 2**30:.1f} GiB an image; a boxes model reads "
                          f"images of at most {MAX_CANVAS_BYTES // 2**30} GiB (float32)")
    width = config["learner"]["params"].get("width")
    if isinstance(width, int) and width > MAX_WIDTH:  # checked before torch sees it
        raise BundleError(f"{CONFIG} in {source!r}: learner.params.width is {width}; a BoxDetector of this "
                          f"workbench is at most {MAX_WIDTH} channels wide")
    detector = _restore(source, config["learner"], tensors, signature, [str(c) for c in config["classes"]])
    return BoxModel(detector, config["classes"], signature, info={**config.get("training", {}),
                                                                   "bundle": source})


def _restore(source: str, entry: dict, tensors: dict, signature, classes: list[str]):
    import torch

    from workbench.data.devices import torch_device
    from workbench.learn.box_detector import BoxDetector, _network

    params = _checked(entry["params"])
    labels = [str(c) for c in entry["labels"]]
    if not labels or len(set(labels)) != len(labels) or not set(labels) <= set(classes):
        raise ValueError(f"the detector's labels {labels} must be distinct and among the classes {classes}")
    channels = signature.shape[2] if len(signature.shape) == 3 else 1
    if entry["n_channels"] != channels:
        raise ValueError(f"the detector reads {entry['n_channels']} channels but the input is "
                         f"{signature.describe()}")
    if not math.isfinite(entry["mean"]):
        raise ValueError(f"the detector's mean is {entry['mean']!r}; expected a finite number")
    detector = BoxDetector(**params)
    detector.labels_, detector.n_channels_ = labels, channels
    detector.mean_, detector.std_ = float(entry["mean"]), float(entry["std"])
    detector.scale_ = _scale(signature.shape[:2], detector.max_side)
    detector.device_, detector._seed, detector.history_ = torch_device("cpu"), 0, []
    unknown = sorted(k for k in tensors if not k.startswith("net."))
    if unknown:
        raise BundleError(f"{WEIGHTS} in {source!r} holds {unknown[:3]}, which no part of a boxes "
                          "model reads")
    state = {k[4:]: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    unfit = (f"the weights in {WEIGHTS} of {source!r} do not fit the network its settings describe "
             f"(width={detector.width}, {channels} channel(s), {len(labels)} labels)")
    try:
        with torch.device("meta"):  # the shapes the settings give, before any memory is used
            expected = {k: (tuple(v.shape), v.dtype)
                        for k, v in _network(channels, len(labels), detector.width).state_dict().items()}
    except (RuntimeError, ValueError, OverflowError) as e:  # sizes no tensor can have
        raise BundleError(f"{unfit}: those settings give no network ({e})") from None
    for key, value in state.items():  # a 0-d tensor (a step counter) is written as (1,): np.ascontiguousarray
        if key in expected and expected[key][0] == () and tuple(value.shape) == (1,):
            state[key] = value.reshape(())
    given = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    if given != expected:
        missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
        wrong = [k for k in expected if k in given and given[k] != expected[k]]
        what = (f"lacks {missing[:3]}" if missing else f"has unexpected {extra[:3]}" if extra else
                f"has {wrong[0]} of shape {given[wrong[0]][0]} ({given[wrong[0]][1]}), where the network "
                f"takes {expected[wrong[0]][0]} ({expected[wrong[0]][1]})")
        raise BundleError(f"{unfit}: it {what}")
    net = _network(channels, len(labels), detector.width)
    net.load_state_dict(state, strict=True)
    detector.net_ = net.eval()
    return detector


def _checked(params: dict) -> dict:
    """A BoxDetector's settings from config.json: known names and plain values only (the
    schema has checked the ranges of those prediction reads)."""
    from workbench.learn.box_detector import BoxDetector

    known = set(BoxDetector().get_params(deep=False))
    for key, value in params.items():
        if key not in known:
            raise ValueError(f"unknown setting {key!r} for BoxDetector; it takes {sorted(known)}")
        if key == "labels":
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ValueError(f"setting 'labels' of BoxDetector must be a list of class names or "
                                 f"null, got {type(value).__name__}")
        elif not isinstance(value, (int, float, str, bool, type(None))):
            raise ValueError(f"setting {key!r} of BoxDetector must be a plain value, got "
                             f"{type(value).__name__}")
    if params.get("device", "auto") not in ("auto", "cpu", "cuda"):
        raise ValueError(f"setting 'device' of BoxDetector must be 'auto', 'cpu' or 'cuda', got "
                         f"{params['device']!r}")
    return params
