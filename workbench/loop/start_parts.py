"""Starting a spans or boxes session from a bundle of its task: what `loop/start_from.py` does
for classes, done for lists of parts.

`Session(pool, store, start_from=bundle)` with a spans pool takes a spans bundle (a
`SpanModel`), with a boxes pool a boxes bundle (a `BoxModel`). Round 0 is the bundle's
tagger or detector: its spans or boxes are pre-annotated from the first text or image shown,
its uncertainty ranks the queue, and it is scored on the test split.

Each later round trains a learner of the bundle's kind and settings on people's labels and,
beside them, on the bundle's own parts for up to MAX_PRIOR_ITEMS items it is sure of (images:
up to MAX_PRIOR_PIXELS pixels; a seeded sample of those not labeled by people, nor in the
audit sample): a text whose every token's likeliest tag is at PRIOR_CONFIDENCE or more; an
image none of whose candidate boxes scores within BOX_MARGIN of 0.5
(`box_detector.UNCERTAINTY`'s least confident box at most 1 - 2 BOX_MARGIN). Ten new labels
then correct a model of hundreds rather than replace it with a model of ten (the tagger and
the detector take no prior, as MultiLabelHead takes none: `inputs.with_prior_labels`). A
detector is also fine-tuned from the bundle's network rather than trained from random
weights (`BoxDetector.fit_boxes(start_from=)`).

Measured on the digit scenes (a bundle of 150 images of one set at mAP@0.5 0.79, new labels
from another; seeds 0 and 1, on which BOX_MARGIN was chosen): at 10 / 40 / 100 new images,
mAP 0.17-0.24 / 0.39-0.53 / 0.73-0.78 from scratch; 0.75 / 0.82-0.83 / 0.87-0.88 started
from the bundle. Fine-tuning alone gave 0.54 at 10, the sure images alone 0.45-0.63; images
sure at PRIOR_CONFIDENCE (margin 0.4) were 6% of the pool and gave 0.54-0.58 at 10.

A pool of another kind of item, of other classes, or of images of another shape than the
bundle's, is refused with both named.
"""

from __future__ import annotations

import threading

import numpy as np
from sklearn.base import clone

from workbench.data.tasks import BOXES, SPANS
from workbench.loop.inputs import PRIOR_CONFIDENCE

__all__ = ["BOX_MARGIN", "MAX_PRIOR_ITEMS", "MAX_PRIOR_PIXELS", "PartsStart", "check_learner",
           "check_parts_start", "learner_after_parts"]

# Texts or images a round learns from the bundle: each costs a round what a labeled one does
# (the tagger's fit grows with its tokens; the detector holds every image it trains on in
# memory, so images count by their pixels: 500 of 128 x 128, 31 of 512 x 512).
MAX_PRIOR_ITEMS = 500
MAX_PRIOR_PIXELS = 500 * 128 * 128
BOX_MARGIN = 0.1  # an image is sure when no candidate box scores within this of 0.5


def check_parts_start(model, pool, classes, start_from) -> list:
    """The session's classes (the bundle's when neither the pool nor the caller names any),
    after checking that the bundle reads this pool's items and marks the same classes."""
    sig = model.signature
    if pool.kind != sig.kind:
        raise ValueError(f"the pool {pool.name!r} holds {pool.kind} items; the model to start from "
                         f"{start_from!r} reads {sig.describe()}")
    if pool.task == BOXES and tuple(pool.X.shape[1:]) != tuple(sig.shape):
        raise ValueError(f"the pool {pool.name!r} holds images of shape {tuple(pool.X.shape[1:])}; the "
                         f"model to start from reads {sig.describe()}")
    classes = list(classes) if classes is not None else list(model.classes)
    ours, theirs = [str(c) for c in classes], [str(c) for c in model.classes]
    if set(ours) != set(theirs):
        kind = "span labels" if pool.task == SPANS else "box classes"
        raise ValueError(f"the session's {kind} {ours} differ from the model's {theirs}; start from a "
                         "model of the same ones (or pass classes= to match)")
    if pool.task == BOXES and set(map(str, model.detector.labels_)) != set(theirs):
        # its network has an output per label it knows: a class it lacks it could never find
        raise ValueError(f"the model to start from {start_from!r} has classes {theirs} but its detector "
                         f"finds only {list(model.detector.labels_)}; start from a detector trained "
                         "with labels=[...] naming every class")
    return classes


def learner_after_parts(model, class_names: list[str], seed: int):
    """A fresh, unfitted learner of the bundle's kind and settings: for the session's labels (a
    detector keeps the bundle's order of them: it is fine-tuned from the bundle's network)."""
    if model.task == SPANS:
        tagger = clone(model.tagger).set_params(labels=list(class_names), random_state=seed)
        if hasattr(tagger, "check"):  # a Hugging Face tagger: each round fine-tunes its base network again
            try:
                tagger.check()
            except FileNotFoundError as e:
                raise FileNotFoundError(f"each round fine-tunes the network the bundle's tagger was "
                                        f"fine-tuned from, {tagger.model!r}, on the new labels and the "
                                        f"bundle's sure spans, and it is not on this machine: {e}") from None
        return tagger
    return clone(model.detector).set_params(labels=list(model.detector.labels_), random_state=seed)


def check_learner(model, learner) -> None:
    """A detector given as learner= with a boxes bundle is fine-tuned from the bundle's network
    each round, so it must be a network of the same build: refused here, before a store is
    touched, rather than at the first round."""
    if model.task != BOXES or learner is None:
        return
    theirs = model.detector
    if not isinstance(learner, type(theirs)):
        raise ValueError(f"learner= is fine-tuned from the network of the model to start from, so it "
                         f"must be a {type(theirs).__name__}, got {type(learner).__name__}; leave learner= "
                         "out to train one like the model's")
    differ = {k: (getattr(learner, k, None), getattr(theirs, k)) for k in ("width", "max_side")
              if getattr(learner, k, None) != getattr(theirs, k)}
    if differ:
        said = ", ".join(f"{k}={mine!r} given, {k}={bundle!r} in the model"
                         for k, (mine, bundle) in differ.items())
        raise ValueError(f"learner= is fine-tuned from the network of the model to start from, so it "
                         f"needs its {', '.join(differ)}: {said}")


class PartsStart:
    """The bundle a spans or boxes session started from, read against its pool: round 0's
    model, and the parts of the items it is sure of, which later rounds learn."""

    def __init__(self, model, session):
        self.model, self.session = model, session
        self.fitted = model.tagger if model.task == SPANS else model.detector
        self._lock = threading.Lock()
        self._sure: tuple[np.ndarray, list] | None = None  # (positions, their parts), once
        self._scores = None  # its uncertainty over the pool: round 0's ranking, and the sure items

    @property
    def _reserve(self) -> np.ndarray:
        """The audit sample's positions, labeled or not (the ranker's reserve, fixed by the
        session's seed): never learned from the bundle, so a round is the same whenever it
        is trained again (a reopened store's), and the audit grades no guess of the bundle's."""
        return self.session.ranker.reserve

    def round_zero(self, labeled: list[str], *, scored: bool = True):
        """(the bundle as the session's round-0 RoundModel, its history row: None unless
        `scored`, for a reopened store that has row 0 already)."""
        from workbench.loop import box_rounds, span_rounds
        from workbench.loop.rounds import RoundModel

        session = self.session
        rounds = span_rounds if session.task == SPANS else box_rounds
        uncertainty, predictor = self.scores(), self.predictor()
        # scored on the test split, else on audit labels the store has already (a teammate's):
        # the bundle never saw them
        labels = dict(session.item_state.labels)
        row = rounds.scored(session, self.fitted, labels, session.item_state.audit_ids(), [],
                            self.model.info.get("labels_hash")) if scored else None
        return RoundModel(self.fitted, uncertainty, uncertainty, [], labeled, 0, False, predictor), row

    def predictor(self):
        from workbench.loop import box_rounds, span_rounds

        info = {"round": 0, "n_labels": 0, "labels_hash": self.model.info.get("labels_hash")}
        if self.session.task == SPANS:
            return span_rounds.SpanPredictor(self.fitted, span_rounds.pool_features(self.session), info)
        return box_rounds.BoxPredictor(self.fitted, self.session, info)

    def scores(self):
        """The bundle's uncertainty over the pool (`Scores`, on demand)."""
        from workbench.loop import box_rounds, span_rounds

        session = self.session
        if self._scores is None:
            rounds = span_rounds if session.task == SPANS else box_rounds
            self._scores = rounds.uncertainty_scores(session, self.fitted)
        return self._scores

    def sure(self, exclude) -> tuple[np.ndarray, list]:
        """(positions, parts): up to MAX_PRIOR_ITEMS pool items the bundle is sure of, outside
        the item ids `exclude` (people's labels) and the audit sample, and the bundle's parts
        for each (a SpanList, or a list of box tuples)."""
        positions, parts = self._all_sure()
        out = np.asarray(self.session.pool.item_ids.isin(list(exclude)))
        out[self._reserve] = True
        keep = ~out[positions]
        positions, parts = positions[keep], [p for p, k in zip(parts, keep) if k]
        most = MAX_PRIOR_ITEMS
        if self.session.task == BOXES:
            most = min(most, max(1, MAX_PRIOR_PIXELS // int(np.prod(self.session.pool.X.shape[1:3]))))
        if len(positions) > most:
            rng = np.random.default_rng(self.session.seed)
            pick = np.sort(rng.choice(len(positions), most, replace=False))
            positions, parts = positions[pick], [parts[i] for i in pick]
        return positions, parts

    def _all_sure(self) -> tuple[np.ndarray, list]:
        """Every pool item the bundle is sure of, and its parts: computed once (the bundle
        never changes), by the first round that asks, in its thread."""
        with self._lock:
            if self._sure is None:
                session = self.session
                n = len(session.pool)
                unsure = np.concatenate([self.scores()[np.arange(s, min(n, s + 4096))][:, 0]
                                         for s in range(0, n, 4096)]) if n else np.zeros(0)
                # every token's top tag at PRIOR_CONFIDENCE; every box's score BOX_MARGIN or
                # more from 0.5 (the least confident box is 1 - |2 score - 1|)
                limit = 1 - PRIOR_CONFIDENCE if session.task == SPANS else 1 - 2 * BOX_MARGIN
                positions = np.flatnonzero(unsure <= limit + 1e-9)
                self._sure = positions, self._parts(positions)
            return self._sure

    def _parts(self, positions: np.ndarray) -> list:
        if self.session.task == SPANS:
            from workbench.loop.span_rounds import pool_features

            features = pool_features(self.session)
            return [spans for start in range(0, len(positions), 512) for spans, _ in
                    self.fitted.predict_spans(features, positions[start:start + 512])]
        from workbench.loop.box_rounds import own_detections

        threshold = float(getattr(self.fitted, "threshold", 0.5))
        return [[tuple(b[:5]) for b in boxes if b[5] >= threshold]
                for start in range(0, len(positions), 256)
                for boxes in own_detections(self.fitted, self.session.pool, positions[start:start + 256])]
