"""A boxes session's rounds: what `Rounds` and `Ranker` do for one class per item, done for
images whose labels are lists of boxes.

The learner (`workbench.learn.box_detector.BoxDetector` by default) finds and classifies the
objects of an image; a round fits it on the labeled images (audit ones left out), scores it by
mAP@0.5 on data the strategy did not choose (the test pool, or the audit images), and ranks the
queue by how unsure it is of each unlabeled image. The round's `proba` and `query_proba` hold,
for every image, the two uncertainty measures of `box_detector.UNCERTAINTY` (computed on
demand, as class probabilities are for other tasks); the strategies of
`strategies.BOX_STRATEGIES` rank by one of them. A served image's suggestion is the model's
boxes at its threshold or above, pre-annotated in the widget, and its confidence the least
sure box's score.

In a pool of images of different sizes the detector reads each image padded to the pool's
canvas (`pool.image_sizes`); what it finds is cut to the image's own size (`boxes.clipped`)
wherever it is used - suggested, scored, or counted in an image's uncertainty - so nothing
it says ever lies in the padding.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import clone

from workbench.data.box_scores import box_scores
from workbench.data.boxes import Box, BoxList, clipped, image_size, image_sizes
from workbench.learn.box_detector import UNCERTAINTY, _uncertainty
from workbench.learn.box_model import scored_boxes
from workbench.loop.held_out import MIN_AUDIT
from workbench.loop.inputs import Scores
from workbench.loop.scored_rounds import scored_row
from workbench.store.views import labels_hash

TASK = "boxes"
SEEN = 4096  # served images whose detections a predictor keeps


def images(pool, positions) -> np.ndarray:
    """The pool's images at `positions` (what the detector reads)."""
    return np.asarray(pool.X[np.asarray(positions, dtype=np.int64)])


def own_detections(detector, pool, positions) -> list[list[tuple]]:
    """The detector's candidate boxes in the pool's images at `positions`, each cut to its
    image's own size (`boxes.clipped`; as found, in a pool of images of one size)."""
    found = detector.predict_boxes(images(pool, positions))
    if getattr(pool, "image_sizes", None) is None:
        return found
    sizes = image_sizes(pool)[np.asarray(positions, dtype=np.int64)]
    return [clipped(boxes, w, h) for boxes, (w, h) in zip(found, sizes)]


def image_uncertainty(detector, pool, positions) -> np.ndarray:
    """(n, 2) how unsure the detector is of the images at `positions` (`UNCERTAINTY`): from
    their candidate boxes inside each image's own size (in a pool of one size, the detector's
    own `uncertainty`: the same boxes)."""
    if getattr(pool, "image_sizes", None) is None:
        return detector.uncertainty(images(pool, positions))
    found = own_detections(detector, pool, positions)
    scores = np.zeros((len(found), max([len(b) for b in found], default=0) or 1), np.float32)
    for row, boxes in zip(scores, found):
        row[:len(boxes)] = [b[5] for b in boxes]
    return _uncertainty(scores)


def suggested(pool, classes, detections, threshold: float, position: int) -> tuple[BoxList, float]:
    """A detector's boxes for the image at `position` as the BoxList it suggests (those at
    `threshold` or above, cut to the image's own size; a box that rounds to nothing or twice is
    left out), and the least sure one's score (1.0 when it suggests none). A bundle's BoxModel
    predicts the same (`scored_boxes`)."""
    width, height = image_size(pool, int(position))
    boxes = scored_boxes(detections, width, height, classes, threshold)
    return BoxList(boxes), min(boxes.scores, default=1.0)


class BoxPredictor:
    """A fitted detector with the pool it reads: images of the pool in, boxes out."""

    def __init__(self, detector, session, info: dict):
        self.detector, self.info = detector, info
        self.pool, self.classes = session.pool, session.class_names
        self.task = TASK
        # a served image's detections, kept: its suggestion and its reason read the same ones
        self._seen: dict[int, list[tuple]] = {}

    def detections(self, positions) -> list[list[tuple]]:
        """Every box the detector finds in each image at `positions`, with its score."""
        positions = [int(p) for p in positions]
        known = {p: self._seen.get(p) for p in positions}
        missing = [p for p, found in known.items() if found is None]
        if missing:
            known.update(zip(missing, own_detections(self.detector, self.pool, missing)))
            if len(self._seen) + len(missing) > SEEN:
                self._seen = {}  # a new dict: a reader of the old one still finds its entries
            self._seen.update((p, known[p]) for p in missing)
        return [known[p] for p in positions]

    def boxes_of(self, position: int) -> tuple[BoxList, float]:
        """The model's boxes for the image at `position`, and the least sure one's score."""
        threshold = getattr(self.detector, "threshold", 0.5)
        return suggested(self.pool, self.classes, self.detections([int(position)])[0], threshold, position)


def fit(session, labels: dict, audit: set[str], round_: int, prior=None) -> tuple:
    """One round: (the fitted detector, its uncertainty over the pool's images (Scores, what
    the queue ranks by), its BoxPredictor, the images it trained on, the history row). `prior`:
    the bundle the session started from (loop/start_parts.py), whose sure images it learns too."""
    train_ids = [i for i in labels if i not in audit]
    if not train_ids:
        raise ValueError("need at least one labeled image (outside the audit sample) to train; "
                         "label a few more images")
    started = time.perf_counter()
    pool = session.pool
    positions, targets = pool.positions(train_ids), [list(labels[i]) for i in train_ids]
    if prior is not None:
        sure, parts = prior.sure(labels.keys())
        positions, targets = np.concatenate([positions, sure]), targets + parts
    detector = clone(session.learner)
    if prior is None:
        detector.fit_boxes(images(pool, positions), targets)
    else:  # fine-tuned from the bundle's network (its classes in its order: the network's
        # outputs): a detector of ten images would forget what it knew
        detector.set_params(labels=list(prior.fitted.labels_))
        detector.fit_boxes(images(pool, positions), targets, start_from=prior.fitted)
    hash_ = labels_hash(list(labels), [str(v) for v in labels.values()])
    info = {"round": round_, "n_labels": len(train_ids), "labels_hash": hash_}
    row = scored(session, detector, labels, audit, train_ids, hash_, started)
    predictor = BoxPredictor(detector, session, info)
    return detector, uncertainty_scores(session, detector), predictor, train_ids, row


def uncertainty_scores(session, detector) -> Scores:
    """The detector's uncertainty over the pool's images (UNCERTAINTY's columns), on demand."""
    pool = session.pool
    return Scores(len(pool), len(UNCERTAINTY), lambda positions: image_uncertainty(detector, pool, positions))


def scored(session, detector, labels: dict, audit: set[str], train_ids: list, hash_, started=None) -> dict:
    """The history row of a detector trained on `train_ids`: its box scores (see evaluate)."""
    metrics, eval_on, n_eval = evaluate(session, detector, labels, audit)
    return scored_row(train_ids, eval_on, n_eval, started, hash_, box_map50=metrics["map50"],
                      box_precision=metrics["precision"], box_recall=metrics["recall"])


def evaluate(session, detector, labels: dict, audit: set[str]) -> tuple[dict, str, int]:
    """mAP@0.5 (and precision and recall at the detector's threshold) on the test pool's
    images, or on the audit images (their labels were kept out of training); with what and
    how many."""
    if session.test is not None:
        pictures, truth = session.test
        sizes = getattr(session.test, "sizes", None)  # each test image's own (held_out.BoxTest)
        what = f"held-out test images ({len(truth)})"
    else:
        audited = [i for i in audit if i in labels]
        truth = [labels[i] for i in audited]
        if len(truth) < MIN_AUDIT:
            empty = {"map50": np.nan, "precision": np.nan, "recall": np.nan}
            return empty, f"audit sample too small ({len(truth)} of {MIN_AUDIT} needed)", len(truth)
        positions = session.pool.positions(audited)
        pictures, sizes = images(session.pool, positions), image_sizes(session.pool)[positions]
        what = f"random audit sample ({len(truth)} images)"
    predicted = detector.predict_boxes(np.asarray(pictures))
    if sizes is not None:
        predicted = [clipped(boxes, w, h) for boxes, (w, h) in zip(predicted, sizes)]
    return box_scores([list(t) for t in truth], predicted, session.class_names), what, len(truth)


def reason(session, model, role: str, score, position: int, who: str) -> str:
    """Why an image is shown, in the words of the strategy that ranked it."""
    detections = model.predictor.detections([int(position)])[0]
    unsure = min(detections, key=lambda d: abs(2 * d[5] - 1), default=None)
    about = ("it finds no object here" if unsure is None else
             f"least sure of the box {Box(*map(float, unsure[:4]), str(unsure[4])).describe()} "
             f"({unsure[5]:.0%})")
    if role == "least_confident_box":
        return f"least confident box {score:.2f}: {who} is {about}"
    if role == "box_entropy":
        return f"box entropy {score:.2f} nats: {who} hesitates over this image; {about}"
    return role
