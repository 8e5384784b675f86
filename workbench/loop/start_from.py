"""Starting a session from a model bundle: no cold start, and training continues from it.

`Session(pool, store, start_from=bundle)` takes a model trained elsewhere (a bundle path,
`name@version` in the registry, or a `Model`) and makes it the session's round 0: its
probabilities suggest labels and rank uncertainty from the first item shown. The session
keeps training from it rather than forgetting it at the first retrain:

- a learner that reads a representation reads the bundle's: the pool is encoded with the
  bundle's fitted encoder, not a newly learned one, so new labels land in the same space;
- the bundle's probabilities for the pool seed each round's label spreading beside the new
  labels (`LightHead(prior_weight=...)`), so ten new labels refine a model of hundreds
  instead of replacing it with a model of ten, and correct it where they disagree; a
  learner that takes no prior learns the bundle's confident calls as labels instead
  (`workbench.loop.inputs.with_prior_labels`).

A multi-label pool starts from a multi-label bundle the same way: its per-class
probabilities suggest a set and rank uncertainty at once, and a `MultiLabelHead`, which
takes no prior, learns the sets the bundle is sure of (every class's call at least
PRIOR_CONFIDENCE either way) as labels beside the new ones.

A spans or a boxes pool starts from a bundle of its task (a tagger, a detector): see
`workbench.loop.start_parts`.

A pool whose items do not match the bundle's input signature, whose classes differ from
the bundle's, or whose task differs (a set of classes per item against one class, spans
against classes), is refused with both named.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from workbench.data.tasks import MULTI_LABEL, PARTS
from workbench.learn.box_model import BoxModel
from workbench.learn.bundle import load_model
from workbench.learn.head import LightHead
from workbench.learn.model import Model
from workbench.learn.multilabel import MultiLabelHead
from workbench.learn.span_model import SpanModel
from workbench.loop.held_out import held_out, scores_of
from workbench.loop.inputs import Scores
from workbench.loop.rounds import RoundModel
from workbench.loop.start_parts import check_parts_start, learner_after_parts

__all__ = ["ClassStart", "open_start", "learner_after", "start_proba"]


def open_start(start_from, pool, classes) -> tuple[Model, list]:
    """The model to start from, in the session's class order (a SpanModel or BoxModel as it
    is), and those classes (the bundle's when neither the pool nor the caller names any)."""
    # a model in hand; else a bundle's path or a registry name (load_model names anything else)
    model = start_from if isinstance(start_from, (Model, SpanModel, BoxModel)) else load_model(start_from)
    if model.task != pool.task:
        raise ValueError(f"the pool {pool.name!r} is a {pool.task!r} pool and the model to start from "
                         f"{start_from!r} a {model.task!r} model; start from a model of the pool's task")
    if pool.task in PARTS:  # a tagger or a detector: loop/start_parts.py
        return model, check_parts_start(model, pool, classes, start_from)
    sig = model.signature
    if pool.kind != sig.kind or tuple(pool.X.shape[1:]) != tuple(sig.shape):
        raise ValueError(f"the pool {pool.name!r} holds {pool.kind} items with features of shape "
                         f"{tuple(pool.X.shape[1:])}; the model to start from reads {sig.describe()}")
    classes = list(classes) if classes is not None else list(model.classes)
    ours, theirs = [str(c) for c in classes], [str(c) for c in model.classes]
    if set(ours) != set(theirs):
        raise ValueError(f"the session's classes {ours} differ from the model's {theirs}; "
                         "start from a model of the same classes (or pass classes= to match)")
    by_name = dict(zip(ours, classes))
    if any(str(c) not in by_name for c in model.learner.classes_):
        raise ValueError(f"the model's learner knows classes {list(model.learner.classes_)} "
                         f"outside {ours}")
    return Model(model.learner, classes, sig, encoder=model.encoder, info=model.info,
                 task=model.task), classes


def learner_after(model, seed: int, class_names: list[str]):
    """The learner the session trains next: a fresh copy of the bundle's (a tagger's or a
    detector's: `start_parts.learner_after_parts`), else (a learner kept only as ONNX) the
    default light head (a multi-label head for a multi-label model), which
    still learns from the bundle's prior. A multi-label head's columns become the session's
    classes, in the session's order (the bundle's may differ; its probabilities are aligned
    to the session's already)."""
    if model.task in PARTS:
        return learner_after_parts(model, class_names, seed)
    if model.task == MULTI_LABEL and (isinstance(model.learner, MultiLabelHead)
                                      or not hasattr(model.learner, "get_params")):
        head = model.learner if isinstance(model.learner, MultiLabelHead) else MultiLabelHead()
        return clone(head).set_params(classes=[str(c) for c in model.classes], random_state=seed)
    if hasattr(model.learner, "get_params"):
        return clone(model.learner)
    return LightHead(random_state=seed)


def start_proba(model: Model, inputs, pool) -> np.ndarray:
    """The model's probabilities for every pool item (N, classes), in blocks; straight from
    the representation when the pool was encoded with the model's own encoder."""
    if inputs.job is not None and inputs.given_encoder is not None \
            and inputs.given_encoder is model.encoder:
        features = inputs.features()
        return np.concatenate([model.align(model.learner.predict_proba(features[i:i + 8192]))
                               for i in range(0, len(features), 8192)])
    return np.concatenate([model.predict_proba(pool.X[i:i + 8192])
                           for i in range(0, len(pool), 8192)])


class ClassStart:
    """The bundle a classes or multi-label session started from, read against its pool: its
    probabilities over the pool (`pair`: what every round learns beside the new labels) and
    round 0's model (the counterpart of `start_parts.PartsStart`)."""

    def __init__(self, model: Model, session):
        self.model, self.session = model, session
        self.pair = (start_proba(model, session.inputs, session.pool), session.classes)

    def round_zero(self, labeled: list[str], *, scored: bool = True):
        """(the bundle as the session's round-0 RoundModel, its history row: None unless
        `scored`, for a reopened store that has row 0 already)."""
        session, proba = self.session, self.pair[0]
        scores = Scores(len(session.pool), len(session.classes), lambda positions: proba[positions])
        model = RoundModel(self.model.learner, scores, scores, [], labeled, 0, False, self.model)
        if not scored:
            return model, None
        positions, truth, eval_on = held_out(session, {}, set())
        if positions is None:  # no audit labels yet at the start: only a test split can tell
            metrics, n_eval = scores_of(session, truth, list(self.model.predict(session.test[0]))), len(truth)
        else:
            metrics = scores_of(session, [], [])
            eval_on, n_eval = "not measured here yet: no test split, no audit labels", 0
        return model, {
            "n_labels": 0, "accuracy": metrics["accuracy"], "eval_on": eval_on,
            "n_eval": n_eval, "loss": [], "train_accuracy": [], "duration_s": 0.0,
            "time": pd.Timestamp.now(tz="UTC").isoformat(),
            "labels_hash": self.model.info.get("labels_hash"), "macro_f1": metrics["macro_f1"],
            "balanced_accuracy": metrics["balanced_accuracy"], "recall": metrics["recall"],
            "micro_f1": metrics.get("micro_f1", np.nan), "hamming_loss": metrics.get("hamming_loss", np.nan)}
