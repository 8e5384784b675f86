"""A spans session's bundle: its tagger as a `SpanModel` (workbench.learn.span_model), scored
by exact-match span F1, precision and recall on data the strategy did not choose, with its card.

`workbench.loop.export.export_session` has already made sure of what every bundle says of its
training (the model of the labels there are, the commit they are, the pool); this adds the
tagger's scores as its rounds measure them (`span_rounds.evaluate`: the held-out test texts,
else the labeled audit texts, whose labels were kept out of training) and writes the bundle,
its ONNX graph checked against the tagger on a few pool texts first.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.spans import span_list
from workbench.data.tasks import SPANS
from workbench.learn.bundle import BundleError, write_bundle
from workbench.learn.span_model import SpanModel
from workbench.learn.token_tagger import TokenTagger
from workbench.loop import span_rounds
from workbench.loop.model_card_spans import span_model_card

__all__ = ["exportable", "write_spans"]

CHECKED = 8  # pool texts the graph must agree with the tagger on


def exportable(learner) -> None:
    """BundleError for a learner a spans bundle cannot hold: the bundle's arrays and graph are
    the built-in TokenTagger's. Asked before the session retrains or commits anything for the
    bundle, so a refused export changes nothing."""
    if type(learner) is TokenTagger:
        return
    how = ""
    if hasattr(learner, "save_pretrained"):  # a Hugging Face model: its own folder format holds it
        how = ("; save the fine-tuned model as a Hugging Face folder instead, with "
               "session.model.tagger.save_pretrained(path)")
    raise BundleError(f"cannot export this model: a spans bundle holds the built-in TokenTagger, not "
                      f"a {type(learner).__name__}{how}")


def write_spans(session, predictor, path: Path, *, name: str, training: dict, as_zip: bool,
                overwrite: bool, embed_encoder: bool) -> Path:
    """Write the bundle of a spans session's model (`predictor`: its `SpanPredictor`)."""
    tagger = predictor.tagger
    model = SpanModel(tagger, session.class_names, info=predictor.info)
    with session.lock:
        labels, audit = dict(session.item_state.labels), session.item_state.audit_ids()
    metrics, eval_on, n_eval = span_rounds.evaluate(session, tagger, labels, audit)
    training = {**training, "learner": type(tagger).__name__, "task": SPANS, "eval_on": eval_on,
                "span_f1": _number(metrics["f1"]), "precision": _number(metrics["precision"]),
                "recall": _number(metrics["recall"])}
    rounds = session.rounds
    trained = rounds.model.trained_on if rounds.model is not None else list(labels)
    card = span_model_card(name, model, training=training, counts=_label_counts(session, trained),
                           f1_per_label=metrics.get("f1_per_label", {}), n_eval=n_eval,
                           history=session.history)
    texts = session.pool.items["text"]
    sample = np.sort(np.random.default_rng(0).choice(len(texts), min(CHECKED, len(texts)), replace=False))
    return write_bundle(model, path, card=card, training=training, as_zip=as_zip, overwrite=overwrite,
                        check_items=[str(texts.iloc[i]) for i in sample], embed_encoder=embed_encoder)


def _label_counts(session, trained: list[str]) -> tuple[pd.Series, pd.Series]:
    """Of the labels the model was fitted on: the spans per label (in class order), and the
    texts per annotator (a text labeled with no span counts too)."""
    current = session.store.current_labels()
    frame = current[current.index.isin(trained)] if len(current) else current
    if not len(frame):
        return pd.Series(0, index=session.class_names), pd.Series(dtype=int)
    pool = session.pool
    labels = [span.label for item_id, value in frame["label"].items()
              for span in span_list(str(value), str(pool.items["text"].iloc[pool.position(item_id)]),
                                    session.class_names, overlapping=pool.overlapping)]
    per_label = pd.Series(labels, dtype=object).value_counts().reindex(session.class_names, fill_value=0)
    return per_label, frame["annotator"].value_counts()


def _number(value):
    value = float(value)
    return None if math.isnan(value) else round(value, 4)
