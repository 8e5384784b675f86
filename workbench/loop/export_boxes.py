"""A boxes session's bundle: its detector as a `BoxModel` (workbench.learn.box_model), scored
by mAP@0.5, precision and recall on data the strategy did not choose (`box_rounds.evaluate`),
with its card; the steps are those of every task of parts (workbench.loop.export_parts).
"""

from __future__ import annotations

from workbench.data.boxes import box_list, image_size
from workbench.data.tasks import BOXES
from workbench.learn.box_model import BoxModel
from workbench.loop import box_rounds
from workbench.loop.export_parts import Parts, write_parts
from workbench.loop.model_card_boxes import box_model_card

__all__ = ["BOX_PARTS", "write_boxes"]

BOX_PARTS = Parts(
    task=BOXES,
    network=lambda predictor: predictor.detector,
    model=lambda session, predictor: BoxModel(predictor.detector, session.class_names, session.signature,
                                              info=predictor.info),
    evaluate=box_rounds.evaluate,
    figures={"map50": "map50", "precision": "precision", "recall": "recall"},
    per_class="ap",
    card=box_model_card,
    # each image's boxes checked against its own size, not the pool's padded canvas
    parts_of=lambda session, item, value: box_list(value, *image_size(session.pool, item),
                                                   session.class_names),
    check_items=lambda session, positions: box_rounds.images(session.pool, positions))


def write_boxes(session, predictor, path, **options):
    """Write the bundle of a boxes session's model (`predictor`: its `BoxPredictor`)."""
    return write_parts(BOX_PARTS, session, predictor, path, **options)
