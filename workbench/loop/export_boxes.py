"""A boxes session's bundle: its detector as a `BoxModel` (workbench.learn.box_model), scored
by mAP@0.5, precision and recall on data the strategy did not choose, with its card.

`workbench.loop.export.export_session` has already made sure of what every bundle says of
its training (the model of the labels there are, the commit they are, the pool); this adds
the detector's scores as its rounds measure them (`box_rounds.evaluate`: the held-out test
images, else the labeled audit images, whose labels were kept out of training) and writes the
bundle, its ONNX graph checked against the network on a few pool images first.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.boxes import box_list, image_size
from workbench.data.tasks import BOXES
from workbench.learn.box_model import BoxModel
from workbench.learn.bundle import write_bundle
from workbench.loop import box_rounds
from workbench.loop.model_card_boxes import box_model_card

__all__ = ["write_boxes"]

CHECKED = 8  # pool images the graph must agree with the network on


def write_boxes(session, predictor, path: Path, *, name: str, training: dict, as_zip: bool,
                overwrite: bool, embed_encoder: bool) -> Path:
    """Write the bundle of a boxes session's model (`predictor`: its `BoxPredictor`)."""
    detector = predictor.detector
    model = BoxModel(detector, session.class_names, session.signature, info=predictor.info)
    with session.lock:
        labels, audit = dict(session.item_state.labels), session.item_state.audit_ids()
    metrics, eval_on, n_eval = box_rounds.evaluate(session, detector, labels, audit)
    training = {**training, "learner": type(detector).__name__, "task": BOXES, "eval_on": eval_on,
                "map50": _number(metrics["map50"]), "precision": _number(metrics["precision"]),
                "recall": _number(metrics["recall"])}
    rounds = session.rounds
    trained = rounds.model.trained_on if rounds.model is not None else list(labels)
    card = box_model_card(name, model, training=training, counts=_label_counts(session, trained),
                          ap=metrics.get("ap", {}), n_eval=n_eval, history=session.history)
    pool = session.pool
    sample = np.sort(np.random.default_rng(0).choice(len(pool), min(CHECKED, len(pool)), replace=False))
    return write_bundle(model, path, card=card, training=training, as_zip=as_zip, overwrite=overwrite,
                        check_items=box_rounds.images(pool, sample), embed_encoder=embed_encoder)


def _label_counts(session, trained: list[str]) -> tuple[pd.Series, pd.Series]:
    """Of the labels the model was fitted on: the boxes per class (in class order), and the
    images per annotator (an image labeled with no box counts too)."""
    current = session.store.current_labels()
    frame = current[current.index.isin(trained)] if len(current) else current
    if not len(frame):
        return pd.Series(0, index=session.class_names), pd.Series(dtype=int)
    labels = [box.label for item, value in frame["label"].items()  # each image's own size
              for box in box_list(str(value), *image_size(session.pool, str(item)), session.class_names)]
    per_class = pd.Series(labels, dtype=object).value_counts().reindex(session.class_names, fill_value=0)
    return per_class, frame["annotator"].value_counts()


def _number(value):
    value = float(value)
    return None if math.isnan(value) else round(value, 4)
