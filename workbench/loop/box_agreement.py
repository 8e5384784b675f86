"""Agreement between annotators of image boxes (a "boxes" store, `task="boxes"`), box by box.

Two annotators' boxes of one image are the same object when they have the same class and
overlap by IoU >= 0.5, paired greedily, the best overlap first, each box in at most one pair
(the matching mAP@0.5 uses, `workbench.data.box_scores`). From those pairs:

- for every pair of annotators, box F1 over the images both labeled (micro: 2 x pairs / (boxes
  of one + boxes of the other); one annotator taken as the truth, which F1 does not depend on),
  in the column `box_f1`, NaN where neither drew a box; and `mean_iou`, the mean IoU of the
  pairs, how closely they drew the objects both found (NaN with none). Cohen's kappa over whole
  box lists would count one box drawn a pixel wider as a different label of the whole image:
  `cohen_kappa` is NaN for boxes, as for spans;
- alpha is NaN: no nominal alpha over whole images says how much of an image two people agree
  on, and an areal alpha needs what the log does not hold (the images);
- each annotator's agreement with the consensus is their box F1 against the boxes a majority
  (more than half) of the other annotators of the same images drew: the others' boxes are
  grouped into objects (each annotator's boxes matched to the objects found so far, as above,
  against the mean box of each; a box matching none starts one), and an object drawn by more
  than half of them is a consensus box, at the mean of its boxes;
- the disagreements are the images on which some two annotators' boxes do not all pair up:
  drawing one box a pixel off is agreement, a box one of them left out or gave another class
  is not.

A label the log holds that is not a box list (a raw write outside a session) is left out, with
a warning, as a session leaves it out.
"""

from __future__ import annotations

import logging
from itertools import combinations

import numpy as np
import pandas as pd

from workbench.data.box_scores import IOU_THRESHOLD, iou_matrix
from workbench.store.box_changes import Box, greedy_pairs, stored_boxes

BOX_COLUMNS = ["box_f1", "mean_iou"]  # of each pair, after those of every task
log = logging.getLogger(__name__)


def box_set(label: str) -> frozenset:
    """The boxes of a box label as the store holds it (`{"v": 1, "boxes": [[x, y, w, h,
    label], ...]}` or a bare list of them); a ValueError naming the label for anything else."""
    if not isinstance(label, str):
        raise ValueError(f"label {label!r} is not the JSON of a list of boxes")
    return frozenset(stored_boxes(label))


def matched(a, b) -> list[float]:
    """The IoUs of the pairs of boxes of `a` and `b` (one image) that are the same object."""
    return [overlap for _, _, overlap in _pairs(sorted(a), sorted(b))]


def _f1(truth: list, drawn: list) -> tuple[float, list[float]]:
    """Micro box F1 of `drawn` against `truth` (lists of box sets, image by image) and the IoUs
    of the pairs; F1 NaN where neither holds a box."""
    ious = [v for t, d in zip(truth, drawn) for v in matched(t, d)]
    total = sum(len(t) + len(d) for t, d in zip(truth, drawn))
    return (2 * len(ious) / total if total else np.nan), ious


def consensus(box_sets: list) -> frozenset:
    """The objects more than half of these box sets (one image, one set per annotator) drew,
    each at the mean of its boxes (see the module doc)."""
    objects: list[list[Box]] = []  # the boxes of each object, one per annotator at most
    for boxes in box_sets:
        boxes = sorted(boxes)
        pairs = _pairs([_mean(members) for members in objects], boxes)
        for i, j, _ in pairs:
            objects[i].append(boxes[j])
        taken = {j for _, j, _ in pairs}
        objects += [[box] for j, box in enumerate(boxes) if j not in taken]
    return frozenset(_mean(members) for members in objects if len(members) > len(box_sets) / 2)


def _pairs(a: list, b: list) -> list[tuple[int, int, float]]:
    """(i, j, IoU) for the boxes `a[i]` and `b[j]` that are the same object: same class, IoU >=
    0.5, paired greedily, the best overlap first, each box in at most one pair."""
    if not a or not b:
        return []
    same = np.array([x.label for x in a], dtype=object)[:, None] == np.array([y.label for y in b],
                                                                             dtype=object)[None, :]
    return greedy_pairs(np.where(same, iou_matrix(a, b), 0.0), IOU_THRESHOLD)


def _mean(members: list[Box]) -> Box:
    if len(members) == 1:
        return members[0]
    x, y, w, h = (float(np.mean([m[k] for m in members])) for k in range(4))
    return Box(x, y, w, h, members[0].label)


def _box_table(table: pd.DataFrame) -> pd.DataFrame:
    """The annotations' box sets (NaN where none, or where the label is not a box list)."""
    def parse(item_id, label):
        if not isinstance(label, str):
            return np.nan
        try:
            return box_set(label)
        except ValueError as error:
            log.warning("agreement leaves out the label of item %r: %s", item_id, error)
            return np.nan
    return pd.DataFrame({who: [parse(item, label) for item, label in table[who].items()]
                         for who in table.columns}, index=table.index, dtype=object)


def _agree(row: pd.Series) -> bool:
    """Whether every two annotators' boxes of this image pair up, all of them."""
    drawn = list(row.dropna())
    return all(len(matched(a, b)) == len(a) == len(b) for a, b in combinations(drawn, 2))


def box_figures(table: pd.DataFrame) -> dict:
    """The agreement figures of box lists, from the annotations pivoted to items x annotators
    (labels as the store holds them), for `agreement.agreement` to make its Agreement of (see
    the module doc): `pairs` and `per` (rows of its frames), `n_items` (images labeled twice or
    more) and `split` (the images the annotators disagree on)."""
    boxes = _box_table(table)
    shared = boxes[boxes.notna().sum(axis=1) >= 2]
    pairs = []
    for a, b in combinations(sorted(boxes.columns), 2):
        both = boxes[[a, b]].dropna()
        f1, ious = _f1(list(both[a]), list(both[b]))
        pairs.append({"annotator_a": a, "annotator_b": b, "n_items": len(both), "cohen_kappa": np.nan,
                      "box_f1": f1, "mean_iou": float(np.mean(ious)) if ious else np.nan})
    per = []
    for annotator in boxes.columns:
        mine = shared[shared[annotator].notna()]
        agreed = [consensus(list(row.drop(annotator).dropna())) for _, row in mine.iterrows()]
        per.append({"annotator": annotator, "n_items": len(mine),
                    "agreement_with_consensus": _f1(agreed, list(mine[annotator]))[0] if len(mine)
                    else np.nan})
    split = shared.index[~shared.apply(_agree, axis=1).astype(bool)] if len(shared) else shared.index
    return {"pairs": pairs, "per": per, "n_items": len(shared), "split": split}
