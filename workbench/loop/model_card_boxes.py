"""The model card of a boxes model: a bundle's README.md, with the sections of every card
(workbench.loop.model_card) in a detector's terms: the boxes per class it learned from, mAP@0.5
and precision and recall at its threshold on data the strategy did not choose, AP per class,
the rounds' curve, and how to run it (the workbench, or onnxruntime for the maps).
"""

from __future__ import annotations

import pandas as pd

from workbench.loop.model_card import _code, _pct
from workbench.loop.model_card_parts import PartsCard, count_table, curve_table, figure_table

__all__ = ["box_model_card"]


def box_model_card(name: str, model, *, training: dict, counts: tuple[pd.Series, pd.Series],
                   per_class: dict, n_eval: int, history: pd.DataFrame) -> str:
    """The card's Markdown. `counts`: (boxes per class, images per annotator) of the labels
    it learned from; `per_class`: AP@0.5 per class on the held-out data; `n_eval`: its images."""
    sig, detector = model.signature, model.detector
    boxes, per_annotator = counts
    shape = " × ".join(map(str, sig.shape))
    scale = f"; image files are read and divided by {sig.image_scale:g}" if sig.image_scale else ""
    card = PartsCard(
        pipeline_tag="object-detection", tags=["object-detection"],
        description=(f"A {type(detector).__name__} (CenterNet-style, trained from scratch) that finds "
                     f"objects in images and draws a box around each, of {len(model.classes)} classes: "
                     f"{', '.join(_code(c) for c in model.classes)}. A box is shown from the score "
                     f"{model.threshold:g}."),
        reads=[
            f"- Images of shape ({shape}), float32 in [0, 1]{scale}; images larger than "
            f"{detector.max_side} pixels on their longer side are averaged down to it first.",
            "- Image files (or a list of arrays) may be smaller, down to 1 × 1 pixel: `workbench.load_model` "
            "pads each at the bottom and right with zeros to that shape, as the pool's images of different "
            "sizes were, and cuts its boxes to the image's own size; to use `model.onnx` alone, pad the same "
            "way.",
            "- `model.onnx` takes `images` (float32, N × the shape above) and gives `maps` (N × (5 + "
            "classes) × grid): the network's centre heatmap, box size, offset and class maps. Reading "
            "boxes from them (peaks, classes, corners) is outside the graph: config.json's `outputs` "
            "says how, and `workbench.load_model` does it."],
        counts=[*count_table("class", "boxes", boxes), "",
                *count_table("annotator", "images", per_annotator)],
        quality=[
            f"- mAP@0.5: {_pct(training.get('map50'))} (PASCAL VOC: per class, boxes ranked by score, "
            "a hit overlaps a true box of its class by IoU 0.5 or more; the mean over the classes "
            "present)",
            f"- Precision: {_pct(training.get('precision'))}, recall: {_pct(training.get('recall'))} "
            "(of the boxes scored 0.5 or more)", "",
            *figure_table("class", "AP@0.5", per_class, "No held-out boxes: no AP per class.")],
        curve=curve_table(history, [("mAP@0.5", "box_map50"), ("precision", "box_precision"),
                                    ("recall", "box_recall")]),
        usage=[
            "With the workbench:", "", "```python", "import workbench",
            "model = workbench.load_model(\"path/to/this/bundle\")  # or \"name@version\" from a registry",
            "boxes = model.predict_boxes(images)  # a BoxList per image (x, y, w, h, label), with .scores",
            "```", "", "With onnxruntime (the maps; decode them as config.json's `outputs` says):", "",
            "```python", "import numpy as np, onnxruntime as ort",
            "session = ort.InferenceSession(\"model.onnx\")",
            "maps = session.run([\"maps\"], {\"images\": images.astype(np.float32)})[0]", "```"],
        limits=_limits(model, training, boxes, n_eval))
    return card.markdown(name, training)


def _limits(model, training: dict, per_class: pd.Series, n_eval: int) -> list[str]:
    out = [f"- Made for images like those of the pool {_code(training.get('pool'))}; images from "
           "elsewhere (other cameras, scales, backgrounds) may score far lower than the figures above."]
    few = [f"{_code(c)} ({int(k)})" for c, k in per_class.items() if k < 10]
    if few:
        out.append(f"- Few boxes for {', '.join(few)}: detections of these classes are the least "
                   "reliable.")
    if n_eval < 100:
        out.append(f"- Measured on {n_eval} images only: the figures above are rough.")
    out.append(f"- Objects much under 16 pixels (after the resize to {model.detector.max_side} "
               "pixels) go unseen: the network's grid has one cell per 8 pixels.")
    out.append("- Scores are a model's, not calibrated frequencies; check them on your data before "
               "choosing a threshold.")
    return out
