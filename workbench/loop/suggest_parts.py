"""Suggestions accepted in bulk in a spans or boxes pool: what `Reviewing.accept_suggestions`
does for one class per item, done for labels that are lists of parts (the spans of a text,
the boxes of an image).

An item's suggestion is what the round's model would pre-annotate when it is served (the
tagger's spans, the detector's boxes at its threshold), and its confidence must cover the
whole label: both "these parts are right" and "nothing else is here". Accepting a text with
no span, or an image with no box, writes "nothing here"; the least sure suggested part alone
(1.0 when there is none, what the widget shows) would accept that on no grounds at all.

- Spans: the smallest, over every token of the text, of the probability the tagger gives the
  BIO tag the suggestion gives that token (B-X or I-X inside a suggested span, O outside).
  Not the token's top tag: where the tagger's top tags make an I-X after an O, the
  suggestion starts a span there (B-X, as conlleval reads it), and the tagger's doubt about
  where that name begins is the probability of B-X, not its surer I-X. One sparse product
  for all the open texts.
- Boxes: min(the least sure suggested box's score, 1 - the best score of the candidate boxes
  it does not suggest (those under the threshold; 1 - 0 when there is none)). A candidate at
  0.45 is a near miss: the image may hold an object the suggestion leaves out, whatever its
  boxes' scores. The detector reports candidates from 0.05 (`CANDIDATE_SCORE`), so an image
  is never more than 95% sure while it has one. A forward pass over the open images, in
  chunks of CHUNK images (the detector batches inside them); measured on 2 shared cores,
  1,000 box-digits images of 128x128: 0.45-0.49 s (and 0.43 s for the whole call).

Why both halves, measured: on the entities texts with a TokenTagger trained on 20 texts, the
135 of 980 open texts at >= 0.9 by this measure all held exactly the true spans; by their
least sure span alone, 158, 95% of them (1,000 texts: 0.05 s). On box-digits with
BoxDetector() trained on 200 images, of 500 open images the 131 whose least sure box (or
none) was >= 0.9 held the true boxes in 15% of cases (most had no box suggested, "sure" at
1.0); the 20 at >= 0.9 by this measure, in all of them (0.8: 51 images, 82%).

A spot-checked item agrees with its suggestion when the person's label says the same thing:
spans exactly (the same start, end and label for every span, and no span more or less);
boxes one to one (a maximum matching of the suggested boxes to the person's, each pair of
the same class at IoU >= 0.5, covers every box of both: a box redrawn a pixel off agrees, a
box missing, added or of another class does not).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from workbench.data.box_scores import iou_matrix
from workbench.data.boxes import BoxList
from workbench.data.spans import SpanList, bio_tags, spans_from_bio
from workbench.data.tasks import SPANS
from workbench.loop import box_rounds

CHUNK = 1024  # open images read and run through the detector at a time (memory stays bounded)
MATCH_IOU = 0.5  # a suggested box and a person's box of the same class at this IoU are one box


def proposals(session, model, positions) -> tuple[list, np.ndarray]:
    """The round model's suggestion (a SpanList or BoxList) for each pool item at `positions`,
    and how sure it is of the whole of it (see the module doc)."""
    positions = np.asarray(positions, dtype=np.int64)
    if session.task == SPANS:
        return _span_proposals(model.predictor, positions)
    return _box_proposals(session, model.predictor, positions)


def _span_proposals(predictor, positions) -> tuple[list, np.ndarray]:
    tagger, features = predictor.tagger, predictor.features
    if not hasattr(tagger, "token_proba"):
        raise ValueError(f"accept_suggestions() in a spans pool needs a learner with the "
                         f"probability of every tag of every token (token_proba: a WordTagger such "
                         f"as TokenTagger); got {type(tagger).__name__}")
    if not len(positions):
        return [], np.zeros(0)
    proba = tagger.token_proba(features, positions)  # one sparse product for all of them
    column = {tag: j for j, tag in enumerate(tagger.tag_names_)}
    suggestions, confidence, at = [], np.ones(len(positions)), 0
    for i, p in enumerate(positions):
        toks = features.tokens[p]
        block = proba[at:at + len(toks)]
        at += len(toks)
        # the tagger's spans, as `predict_spans` makes them (what the widget pre-annotates)
        spans = spans_from_bio(toks, [tagger.tag_names_[j] for j in block.argmax(axis=1)])
        suggestions.append(spans)
        if len(toks):
            given = bio_tags(features.texts[p], spans)[1]  # the tag the suggestion gives each token
            # a tag the tagger does not know (never seen in training) has probability 0
            sure = [block[t, column[tag]] if tag in column else 0.0 for t, tag in enumerate(given)]
            confidence[i] = float(min(sure))
    return suggestions, confidence


def _box_proposals(session, predictor, positions) -> tuple[list, np.ndarray]:
    detector, pool = predictor.detector, session.pool
    threshold = getattr(detector, "threshold", 0.5)
    suggestions, confidence = [], np.ones(len(positions))
    for start in range(0, len(positions), CHUNK):
        part = positions[start:start + CHUNK]
        # not the predictor's cache of served images: this pass would flush it
        found = box_rounds.own_detections(detector, pool, part)
        for i, (p, detections) in enumerate(zip(part, found), start):
            boxes, least = box_rounds.suggested(pool, session.class_names, detections, threshold, p)
            other = max((float(d[5]) for d in detections if float(d[5]) < threshold), default=0.0)
            suggestions.append(BoxList(boxes))
            confidence[i] = min(float(least), 1.0 - other)
    return suggestions, confidence


def agrees(session, item_id: str, label, suggestion) -> bool:
    """Whether a person's label of a spot-checked item says what the suggestion said (see the
    module doc): spans exactly, boxes one to one at IoU >= MATCH_IOU with the same class."""
    state = session.item_state
    label, suggestion = state.check_label(label, item_id), state.check_label(suggestion, item_id)
    if session.task == SPANS:
        return set(label) == set(suggestion)
    if len(label) != len(suggestion):
        return False
    if not len(label):
        return True
    same = np.array([[a.label == b.label for b in suggestion] for a in label])
    ok = (iou_matrix([b[:4] for b in label], [b[:4] for b in suggestion]) >= MATCH_IOU) & same
    rows, cols = linear_sum_assignment(ok, maximize=True)  # the most pairs that can be made
    return bool(ok[rows, cols].all())


def say(session, item_id: str, suggestion) -> str:
    """A suggestion in words, for the spot-check card's reason."""
    if session.task == SPANS:
        words = SpanList(suggestion).describe(session.pool.text_of(item_id))
    else:
        words = BoxList(suggestion).describe()
    return "no spans: nothing here to mark" if words == "no spans" else (
        "no boxes: no object here" if words == "no boxes" else words)
