"""A pretrained image encoder inside a bundle's ONNX graph, when the user asks for it
(`session.export(path, embed_encoder=True)`): the torch module, with the images' preparation
(three channels, resizing, the model's mean and std) and the L2 normalisation before it, is
exported by torch's ONNX exporter and spliced in front of the learner's graph, so the bundle
predicts from items on a machine without the encoder's library or weights.

`encoder_graph` exports it (opset 17, the standard operators only). Resizing is exported
without antialiasing, which upscaling does not use anyway: images larger than the model's
input, which the Python path shrinks with antialiasing, are refused, naming both sizes.
`OnnxEncoder` is what a loaded bundle encodes with then: the graph's part from "items" to
"encoder_features", run by onnxruntime.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

__all__ = ["FEATURES", "OnnxEncoder", "encoder_graph"]

FEATURES = "encoder_features"  # the spliced encoder's output in a bundle's graph


def encoder_graph(encoder, shape: tuple, opset: int):
    """The ONNX model of `encoder.encode` for items of one item's `shape` (H x W [x C]):
    input "items" (N, *shape), output "features" (N, d), L2-normalised."""
    import onnx
    import torch

    module = getattr(encoder, "module", None)
    if module is None or len(shape) not in (2, 3):
        raise ValueError(f"only a pretrained image encoder with a torch module can be embedded in the "
                         f"ONNX graph; {encoder.describe()} reads {encoder.reads}")
    size = (encoder.height or shape[0], encoder.width or shape[1])
    if size[0] < shape[0] or size[1] < shape[1]:
        raise ValueError(f"the images ({shape[0]} x {shape[1]}) are larger than {encoder.describe()} "
                         f"reads ({size[0]} x {size[1]}): the antialiased shrinking is not in ONNX "
                         "opset 17; export without embed_encoder (the bundle then records the encoder)")

    class Encode(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module

        def forward(self, items):
            out = self.net(encoder.prepare(items, antialias=False))
            out = out.flatten(2).mean(-1) if out.ndim > 2 else out
            return out / (out.norm(dim=1, keepdim=True) + 1e-12)

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(Encode().eval().cpu(), (torch.zeros(2, *shape),), buffer, dynamo=False,
                          opset_version=opset, input_names=["items"], output_names=["features"],
                          dynamic_axes={"items": {0: "N"}, "features": {0: "N"}})
    return onnx.load_model_from_string(buffer.getvalue())


class OnnxEncoder:
    """A bundle's embedded encoder: the graph from "items" to "encoder_features", run by
    onnxruntime; `recorded` is the pretrained encoder it was (its spec and weights digest)."""

    def __init__(self, graph: bytes, recorded):
        import onnx

        from workbench.learn.bundle_graph import onnx_session

        model = onnx.load_model_from_string(graph)
        self.part = onnx.utils.Extractor(model).extract_model(["items"], [FEATURES])
        self._session = onnx_session(self.part.SerializeToString())
        self.recorded = recorded
        self.name = "pretrained"

    def arrays(self) -> dict:
        """The recorded encoder's: a representation made with it is keyed as one made with it."""
        return self.recorded.arrays()

    def describe(self) -> str:
        return f"{self.recorded.describe()}, inside model.onnx"

    def transform(self, X, batch: int = 64) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        parts = [self._session.run([FEATURES], {"items": X[i:i + batch]})[0] for i in range(0, len(X), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
