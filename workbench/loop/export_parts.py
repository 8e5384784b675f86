"""The bundle of a model of parts (boxes on images, spans in texts): the steps both tasks share.

`workbench.loop.export.export_session` has already made sure of what every bundle says of its
training (the model of the labels there are, the commit they are, the pool). `write_parts`
adds the model's scores as its rounds measure them (on the held-out test items, else the
labeled audit items, whose labels were kept out of training), counts the parts per class and
the items per annotator of the labels it learned from, writes the card, and writes the
bundle, its ONNX graph checked against the model on a few pool items first. What differs
between the tasks, a `Parts` says (workbench.loop.export_boxes, workbench.loop.export_spans).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.learn.bundle import write_bundle

__all__ = ["Parts", "number", "write_parts"]

CHECKED = 8  # pool items the graph must agree with the model on


@dataclass(frozen=True)
class Parts:
    """What one task of parts puts into the shared steps."""

    task: str
    network: Callable  # predictor -> the network it wraps (the detector, the tagger)
    model: Callable  # (session, predictor) -> the bundle's model (BoxModel, SpanModel)
    evaluate: Callable  # (session, network, labels, audit ids) -> (metrics, eval_on, n_eval)
    figures: dict[str, str]  # the bundle's training key -> the key of `evaluate`'s metrics
    per_class: str  # the key of `evaluate`'s per-class figures (AP, F1)
    card: Callable  # (name, model, *, training, counts, per_class, n_eval, history) -> Markdown
    parts_of: Callable  # (session, item id, stored label) -> its parts, each with a .label
    check_items: Callable  # (session, sorted pool positions) -> the items the graph is checked on


def write_parts(parts: Parts, session, predictor, path: Path, *, name: str, training: dict,
                as_zip: bool, overwrite: bool, embed_encoder: bool) -> Path:
    """Write the bundle of the session's model (`predictor`: its rounds' predictor)."""
    network = parts.network(predictor)
    model = parts.model(session, predictor)
    with session.lock:
        labels, audit = dict(session.item_state.labels), session.item_state.audit_ids()
    metrics, eval_on, n_eval = parts.evaluate(session, network, labels, audit)
    training = {**training, "learner": type(network).__name__, "task": parts.task, "eval_on": eval_on,
                **{key: number(metrics[figure]) for key, figure in parts.figures.items()}}
    rounds = session.rounds
    trained = rounds.model.trained_on if rounds.model is not None else list(labels)
    card = parts.card(name, model, training=training, counts=label_counts(parts, session, trained),
                      per_class=metrics.get(parts.per_class, {}), n_eval=n_eval, history=session.history)
    n = len(session.pool)
    sample = np.sort(np.random.default_rng(0).choice(n, min(CHECKED, n), replace=False))
    return write_bundle(model, path, card=card, training=training, as_zip=as_zip, overwrite=overwrite,
                        check_items=parts.check_items(session, sample), embed_encoder=embed_encoder)


def label_counts(parts: Parts, session, trained: list[str]) -> tuple[pd.Series, pd.Series]:
    """Of the labels the model was fitted on: the parts per class (in class order), and the
    items per annotator (an item labeled with no part counts too)."""
    current = session.store.current_labels()
    frame = current[current.index.isin(trained)] if len(current) else current
    if not len(frame):
        return pd.Series(0, index=session.class_names), pd.Series(dtype=int)
    labels = [part.label for item, value in frame["label"].items()
              for part in parts.parts_of(session, str(item), str(value))]
    per_class = pd.Series(labels, dtype=object).value_counts().reindex(session.class_names, fill_value=0)
    return per_class, frame["annotator"].value_counts()


def number(value) -> float | None:
    """A figure as a bundle's JSON holds it: 4 decimals, NaN (not measured) as null."""
    value = float(value)
    return None if math.isnan(value) else round(value, 4)
