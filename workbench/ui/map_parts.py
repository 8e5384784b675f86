"""The map's colours for spans and boxes, where an item's label is a list of parts: its label
and the model's prediction as the classes among the parts ("LOC, PER"; "(none)": no part), and
its uncertainty as the measure the queue ranks by (the strategy's, or the first the learner
gives when the queue is random)."""

from __future__ import annotations

import json

import numpy as np

from workbench.data.tasks import SPANS

__all__ = ["classes_text", "join_classes", "predictions", "uncertainty"]

NONE = "(none)"  # an item with no class (no part, an empty set)


def join_classes(classes, class_names) -> str:
    """Classes as the legend shows a combination: "LOC, PER", or NONE. Where a class name of
    the session could be read as several, or as none ("a, b", "(none)", ""), every name is quoted
    ('"a, b", "c"'), so no two combinations read alike."""
    found = [str(c) for c in classes]
    if any(", " in name or name in (NONE, "") or name.startswith('"') for name in class_names):
        found = [json.dumps(c, ensure_ascii=False) for c in found]
    return ", ".join(found) or NONE


def classes_text(session, parts) -> str:
    """The classes among an item's parts, each once, in the session's class order."""
    order = {str(c): k for k, c in enumerate(session.class_names)}
    found = sorted({str(p.label) for p in parts}, key=lambda c: (order.get(c, len(order)), c))
    return join_classes(found, session.class_names)


def predictions(session, positions) -> list[str]:
    """What the model suggests for these pool items (what the widget pre-annotates), as text."""
    from workbench.loop import suggest_parts

    suggestions, _ = suggest_parts.proposals(session, session.rounds.model, positions)
    return [classes_text(session, s) for s in suggestions]


def uncertainty(session, positions) -> tuple[np.ndarray, str, float | None]:
    """(the queue's measure for these items, from the model trained on people's labels alone;
    its name; the most it can be, so that one colour means one value on every map: None for
    the box entropy, a sum over up to `max_boxes` candidates whose bound no image nears)."""
    if session.task == SPANS:
        from workbench.learn.token_tagger import UNCERTAINTY
    else:
        from workbench.learn.box_detector import UNCERTAINTY
    column = UNCERTAINTY.index(session.strategy_name) if session.strategy_name in UNCERTAINTY else 0
    scores = np.asarray(session.pool_proba(positions, labels_only=True), dtype=float)
    measure = UNCERTAINTY[column]
    # a token's tags: O, and B- and I- of each label (the tagger's own, when it has them)
    tags = len(getattr(session.rounds.model.learner, "tag_names_", ())) or 1 + 2 * len(session.class_names)
    most = {"least_confident_token": 1 - 1 / tags, "mean_token_entropy": float(np.log(tags)),
            "least_confident_box": 1.0}.get(measure)
    return scores[:, column], measure, most
