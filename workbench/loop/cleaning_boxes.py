"""Suspected mislabels in a boxes pool: one row per box given, and per object left out.

An image's boxes can be wrong in three ways: a box with the wrong class, one drawn badly (off
the object, or around nothing), or an object with no box at all. Each labeled image is scored
by a detector that never trained on it (k-fold cross-fitting of a clone of the session's
learner over the labeled images):

- a box given is weighed by a held-out crop classifier: a logistic regression on what the
  boxes of the other folds hold (`workbench.data.box_crops`: each box's pixels resampled to
  16 x 16), which reads the class off the box itself where a light detector must also find
  the object first (on 100 labeled digit scenes, seeds 3 and 4, it put three planted wrong
  classes each at ranks 1-13 of about 215 rows, where the detector's own class scores had
  put them at 5-61). `p_held_out` is the probability it gives the
  box's class, `suspicion` = (1 + other - own) / 2 with `other` the likeliest other class's:
  1 is "another class, surely", 0 "this class, surely". Its top class is `suggested`;
- an object the held-out detector finds that no given box covers (IoU < 0.5 with each) is an
  object left out, as suspicious as the detector is sure something is there (the scores of
  its class guesses at that place, added up: `p_held_out`), listed from LEFT_OUT_MIN up.

The rows come most suspicious first, so the top is what to look at: "box 30,8 20x24 3: the
held-out crop classifier says 8 (p of 3: 0.04)" (`describe`). Models this light, trained on a
few dozen images, doubt many a right box too: a slip sits near the top, but the top is not all
slips. The folds run in this process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from workbench.data.box_crops import crops
from workbench.data.box_scores import iou
from workbench.data.boxes import Box, image_size
from workbench.loop.box_rounds import images, own_detections
from workbench.loop.cleaning_folds import labeled_for_folds

COLUMNS = ["item_id", "kind", "x", "y", "w", "h", "given", "suggested", "iou", "p_held_out",
           "suspicion", "fold"]
GIVEN, LEFT_OUT = "given", "left out"
MATCH = 0.5  # the IoU at which two boxes are one object (what mAP@0.5 counts)
LEFT_OUT_MIN = 0.25  # how sure a held-out detector is of an object before its absence is listed


def box_suspects(session, k: int | None = None, *, folds: int = 5) -> pd.DataFrame:
    """Every box of the session's labels, and every object a held-out detector finds that the
    labels leave out, most suspicious first (the first `k`): `kind` "given" or "left out";
    `x`, `y`, `w`, `h` the box (the given one, or the detector's); `given` its class in the
    store (None when left out); `suggested` the crop classifier's class for a box given, the
    detector's for an object left out; `iou` the most the box and a held-out detector's box
    overlap; `p_held_out` the crop classifier's probability of the given class (given), or the
    detector's score for an object there (left out); `suspicion` as the module doc says;
    `fold` the fold the image was held out in."""
    labels, item_ids = labeled_for_folds(session, folds, items="labeled images", scorer="a detector")
    pool = session.pool
    positions = pool.positions(item_ids)
    fold = np.random.default_rng(session.seed).permutation(len(item_ids)) % folds
    rows = []
    names = session.class_names
    for f in range(folds):
        held, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        detector = clone(session.learner).fit_boxes(images(pool, positions[train]),
                                                    [list(labels[item_ids[i]]) for i in train])
        found = own_detections(detector, pool, positions[held])  # none in an image's padding
        judge = _crop_classifier(pool, positions[train], [labels[item_ids[i]] for i in train], names,
                                 session.seed)
        for i, detections in zip(held, found):
            given = labels[item_ids[i]]
            proba = judge(pool, positions[i], given)
            rows += _rows(item_ids[i], given, proba, names, detections, f)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values(["suspicion", "item_id", "y", "x"], ascending=[False, True, True, True],
                              kind="stable", ignore_index=True)
    return table if k is None else table.head(int(k))


def _crop_classifier(pool, positions, box_lists, names: list[str], seed: int):
    """A function (pool, position, boxes) -> (len(boxes), len(names)) class probabilities of
    those boxes of that image, from a logistic regression fitted on the crops of `box_lists`
    (boxes of the images at `positions`); even odds where the training boxes hold fewer than
    two classes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    boxes = [b for bs in box_lists for b in bs]
    classes = sorted({b.label for b in boxes}, key=names.index)
    if len(classes) < 2:
        return lambda pool, position, given: np.full((len(given), len(names)), 1 / len(names))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500, random_state=seed))
    model.fit(np.concatenate([_crops(pool, p, bs) for p, bs in zip(positions, box_lists)]),
              [b.label for b in boxes])
    columns = [names.index(c) for c in model.classes_]

    def judge(pool, position, given):
        proba = np.zeros((len(given), len(names)))
        if len(given):
            proba[:, columns] = model.predict_proba(_crops(pool, position, given))
        return proba
    return judge


def _crops(pool, position, boxes) -> np.ndarray:
    """The crops (`box_crops.crops`) of `boxes` of the image at `position`: the image read once
    (at its own size: the padding of a pool of mixed sizes is no pixel of it, to blur in at
    its edge) and shown to every box as a view (a copy per box is the image times the boxes)."""
    width, height = image_size(pool, int(position))
    image = np.asarray(images(pool, [position])[0][:height, :width], dtype=np.float32)  # no copy in crops
    return crops(np.broadcast_to(image, (len(boxes), *image.shape)), list(boxes))


def _rows(item_id: str, given, proba: np.ndarray, names: list[str], detections: list, fold: int) -> list:
    """The suspects table's rows of one held-out image: its boxes, weighed by the crop
    classifier's probabilities `proba` (a row per box), and the objects the detector finds
    that no box covers."""
    rows = []
    for box, p in zip(given, proba):
        own = float(p[names.index(box.label)])
        rest = p.copy()
        rest[names.index(box.label)] = -1.0
        other = int(np.argmax(rest))
        top = int(np.argmax(p))
        rows.append([item_id, GIVEN, box.x, box.y, box.w, box.h, box.label, names[top],
                     float(max((iou(box, d) for d in detections), default=0.0)), own,
                     (1.0 + float(p[other]) - own) / 2, fold])
    places: dict[tuple, list] = {}  # a peak's class guesses share its box
    for d in detections:
        places.setdefault(tuple(d[:4]), []).append(d)
    for place, guesses in places.items():
        seen = sum(d[5] for d in guesses)
        if seen < LEFT_OUT_MIN or any(iou(place, box) >= MATCH for box in given):
            continue
        top = max(guesses, key=lambda d: d[5])
        x, y, w, h = (round(float(v), 2) for v in place)
        rows.append([item_id, LEFT_OUT, x, y, w, h, None, str(top[4]),
                     float(max((iou(place, box) for box in given), default=0.0)), float(seen),
                     float(min(seen, 1.0)), fold])
    return rows


def describe(row) -> str:
    """One suspects row in words (what a person reads in a review)."""
    box = Box(row["x"], row["y"], row["w"], row["h"], row["given"] or row["suggested"]).describe()
    if row["kind"] == LEFT_OUT:
        return f"no box where the held-out detector finds {box} (score {row['p_held_out']:.2f})"
    return (f"box {box}: the held-out crop classifier says {row['suggested']} "
            f"(p of {row['given']}: {row['p_held_out']:.2f})")
