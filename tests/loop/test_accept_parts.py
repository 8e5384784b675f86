"""Suggestions accepted in bulk in a spans or a boxes pool (workbench/loop/suggest_parts.py):
a suggestion is the item's whole label, proposed only when the model is sure of every part and
that nothing else is there; a random sample is spot-checked in the queue; a spot-checked item
agrees when the person's spans are the same, or their boxes the same one to one (IoU >= 0.5,
same class); accept() writes the rest as suggestions, one undo takes them back. The spans
tests run the real tagger; the boxes tests a stand-in detector whose scores are planted, and
one the real detector."""

from __future__ import annotations

import numpy as np
import pytest
from stand_ins import StandInDetector

from workbench import Pool, Session
from workbench.data.boxes import Box, BoxList
from workbench.data.entity_texts import entities
from workbench.data.spans import Span, SpanList, bio_tags, tokens
from workbench.loop import suggest_parts

BAD_CONFIDENCE = (0, 1.5, -0.1, "high", True)
BAD_REVIEW = (-1, 2.5, True, "3")


def check_refusals(session) -> None:
    for bad in BAD_CONFIDENCE:
        with pytest.raises(ValueError, match=r"min_confidence must be a probability in \(0, 1\], got"):
            session.accept_suggestions(bad)
    for bad in BAD_REVIEW:
        with pytest.raises(ValueError, match="review must be a number of items >= 0, got"):
            session.accept_suggestions(0.9, review=bad)


def check_accept(session, batch) -> None:
    """accept(): the rest of the batch as suggestions, in one commit; one undo takes it back."""
    before = dict(session.labels)
    event_ids = batch.accept()
    rest = [i for i in batch.proposed["item_id"] if i not in batch.sample]
    assert len(event_ids) == len(rest) > 0
    written = session.store.events().set_index("event_id").loc[event_ids]
    assert set(written["source"]) == {"suggestion"} and set(written["query"]) == {"bulk"}
    suggestion = dict(zip(batch.proposed["item_id"], batch.proposed["suggestion"]))
    assert all(session.label_of(i) == suggestion[i] for i in rest)
    log = session.store.log()
    assert log["message"].iloc[0].startswith(f"Accept {len(rest)} suggestions")
    assert log["added"].iloc[0] == len(rest)
    session.undo()  # one action: the whole batch goes
    assert session.labels == before and all(session.label_of(i) is None for i in rest)


# -- spans ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def texts():
    return entities(120, n_test=30, seed=1)


def test_spans_suggestions_are_sure_of_every_word_and_spot_checked_exactly(texts, tmp_path):
    pool, test = texts
    session = Session(pool, tmp_path / "spans", test=test, watch=False)
    labeled = list(pool.item_ids[:30])
    session.label_many({i: pool.true_label(i) for i in labeled})
    session.retrain()
    check_refusals(session)
    batch = session.accept_suggestions(0.9, review=6)
    proposed = batch.proposed
    assert len(proposed) > 15 and len(batch.sample) == 6 and set(batch.sample) <= set(proposed["item_id"])
    assert (proposed["confidence"] >= 0.9).all()
    reserve = set(pool.item_ids[session.ranker.reserve])
    assert not set(proposed["item_id"]) & (set(labeled) | reserve)
    # the confidence is the least sure word of the whole text: the probability of the tag
    # the suggestion gives it (O outside its spans), never surer than its least sure span
    predictor = session.rounds.model.predictor
    tagger, features = predictor.tagger, predictor.features
    for item_id, spans, sure in proposed.itertuples(index=False):
        p = pool.position(item_id)
        assert spans == predictor.spans_of(p)[0]  # what the widget would pre-annotate
        proba = tagger.token_proba(features, [p])
        tags = bio_tags(pool.text_of(item_id), spans)[1]
        least = min(proba[t, tagger.tag_names_.index(tag)] for t, tag in enumerate(tags))
        assert sure == pytest.approx(least)
        assert sure <= predictor.spans_of(p)[1] + 1e-12
    # the open texts left out are those less sure than 0.9
    positions = [p for p in range(len(pool)) if pool.item_ids[p] not in set(labeled) | reserve]
    _, every = suggest_parts.proposals(session, session.rounds.model, positions)
    sure_ones = [pool.item_ids[p] for p, c in zip(positions, every) if c >= 0.9]
    assert sorted(proposed["item_id"]) == sorted(sure_ones)
    assert (every < 0.9).any()
    # the sample is in front of the queue, each with its reason and the batch's suggestion
    shown = session.peek(6)
    assert {q.item_id for q in shown} == set(batch.sample) and {q.strategy for q in shown} == {"spot-check"}
    suggestion = dict(zip(proposed["item_id"], proposed["suggestion"]))
    for q in shown:
        assert q.reason.startswith("spot-check: 1 of 6 random items of ")
        assert "that nothing else is there); it suggests " in q.reason
        assert q.suggestion == suggestion[q.item_id]
    with pytest.raises(ValueError, match="review the sample first: 0 of 6 items reviewed"):
        batch.accept()
    # the person keeps half the suggestions as they are, and changes the others by a span
    for k, item_id in enumerate(batch.sample):
        spans = list(suggestion[item_id])
        if k % 2 and spans:
            spans = spans[:-1]  # a span left out
        elif k % 2:
            a, b = tokens(pool.text_of(item_id))[0]
            spans = [Span(a, b, "PER")]  # a span more
        session.label(item_id, SpanList(spans))
    p = batch.precision()
    assert (p["reviewed"], p["agreed"], p["estimate"]) == (6, 3, 0.5) and p["low"] < 0.5 < p["high"]
    assert batch.reviewed()["agrees"].tolist() == [k % 2 == 0 for k in range(6)]
    check_accept(session, batch)
    session.close()


class Tags:
    """A stand-in tagger: planted probabilities of O, B-PER, I-PER for each token."""

    tag_names_ = ["O", "B-PER", "I-PER"]

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=float)

    def token_proba(self, features, positions):
        return self.proba


@pytest.mark.parametrize("proba, spans, sure", [
    # "Bob met Ann": each word's top tag at 0.9 or more; no span at all, but "met" only 55% O
    ([[0.95, 0.03, 0.02], [0.55, 0.4, 0.05], [0.9, 0.05, 0.05]], [], 0.55),
    # "met" is most likely I-PER (0.7) after an O: the suggestion starts a name there (B-PER,
    # as conlleval reads it), and the tagger gives B-PER 0.2: that is its doubt, not its 0.7
    ([[0.99, 0.005, 0.005], [0.1, 0.2, 0.7], [0.9, 0.05, 0.05]], [(4, 7, "PER")], 0.2),
    ([[0.01, 0.98, 0.01], [0.97, 0.02, 0.01], [0.02, 0.96, 0.02]], [(0, 3, "PER"), (8, 11, "PER")], 0.96),
])
def test_a_texts_confidence_is_its_least_sure_word_under_the_tags_the_suggestion_gives(proba, spans, sure):
    from types import SimpleNamespace

    from workbench.learn.token_tagger import TokenFeatures

    features = TokenFeatures(["Bob met Ann"])
    model = SimpleNamespace(predictor=SimpleNamespace(tagger=Tags(proba), features=features))
    suggestions, confidence = suggest_parts.proposals(SimpleNamespace(task="spans"), model, [0])
    assert suggestions == [SpanList(Span(*s) for s in spans)] and confidence[0] == pytest.approx(sure)
    model.predictor.tagger = object()  # a tagger without token probabilities is refused by name
    with pytest.raises(ValueError, match="needs a learner with the probability of every tag"):
        suggest_parts.proposals(SimpleNamespace(task="spans"), model, [0])


# -- boxes ----------------------------------------------------------------------------------------
SIDE = 32
# each image's candidate boxes by its kind (the stand-in detector's output): (x, y, w, h, label, score)
PLANTED = {
    "sure box": [(2, 2, 10, 10, "a", 0.97)],
    "near miss": [(4, 4, 8, 8, "a", 0.45)],  # nothing suggested, but a box at 0.45: not sure
    "nothing": [],  # no candidate at all: sure there is nothing
    "faint": [(2, 2, 10, 10, "a", 0.99), (18, 18, 8, 8, "b", 0.08)],
    "doubt": [(2, 2, 10, 10, "a", 0.99), (18, 18, 8, 8, "b", 0.2)],
    "two boxes": [(2, 2, 10, 10, "a", 0.95), (16, 14, 12, 12, "b", 0.93), (2, 2, 10, 10, "b", 0.03)],
    "weak box": [(2, 2, 10, 10, "b", 0.85)],
}
KINDS = list(PLANTED)
CONFIDENCE = {"sure box": 0.97, "near miss": 0.55, "nothing": 1.0, "faint": 0.92, "doubt": 0.8,
              "two boxes": 0.93, "weak box": 0.85}


class Planted(StandInDetector):
    """A stand-in detector: an image's pixel (0, 0) says which of PLANTED it finds there."""

    def found(self, image):
        return PLANTED[KINDS[int(round(float(np.asarray(image)[0, 0]) * 10))]]


def kind_of(pool, item_id) -> str:
    return KINDS[int(pool.item_ids.get_loc(item_id)) % len(KINDS)]


@pytest.fixture
def planted(tmp_path):
    n = 70
    images = np.zeros((n, SIDE, SIDE), np.float32)
    images[:, 0, 0] = [(i % len(KINDS)) / 10 for i in range(n)]
    truth = [[d[:5] for d in PLANTED[KINDS[i % len(KINDS)]] if d[5] >= 0.5] for i in range(n)]
    pool = Pool.from_arrays(images, y=truth, task="boxes", classes=["a", "b"], name="planted")
    session = Session(pool, tmp_path / "boxes", learner=Planted(), watch=False)
    session.label_many({i: pool.true_label(i) for i in pool.item_ids[:7]})
    session.retrain()
    yield session
    session.close()


def test_an_image_is_proposed_only_when_sure_of_its_boxes_and_of_nothing_else(planted):
    session, pool = planted, planted.pool
    check_refusals(session)
    batch = session.accept_suggestions(0.9, review=4)
    reserve = set(pool.item_ids[session.ranker.reserve])
    assert reserve and not set(batch.proposed["item_id"]) & (reserve | set(pool.item_ids[:7]))
    open_ = [i for i in pool.item_ids[7:] if i not in reserve]
    want = [i for i in open_ if CONFIDENCE[kind_of(pool, i)] >= 0.9]
    assert sorted(batch.proposed["item_id"]) == sorted(want)
    kinds = {kind_of(pool, i) for i in batch.proposed["item_id"]}
    assert kinds == {"sure box", "nothing", "faint", "two boxes"}  # not the near miss at 0.45
    for item_id, boxes, sure in batch.proposed.itertuples(index=False):
        kind = kind_of(pool, item_id)
        assert sure == pytest.approx(CONFIDENCE[kind])
        assert boxes == BoxList(pool.true_label(item_id))  # the boxes at 0.5 or more
    # at a lower bar the near miss comes in, as "no object here", 55% sure
    low = session.accept_suggestions(0.5, review=0)
    near = low.proposed[[kind_of(pool, i) == "near miss" for i in low.proposed["item_id"]]]
    assert len(near) and all(s == BoxList() for s in near["suggestion"])
    assert near["confidence"].to_numpy() == pytest.approx(0.55)
    assert len(low) == len(open_)


def test_a_box_spot_check_agrees_one_to_one_and_accept_writes_the_rest(planted):
    session = planted
    batch = session.accept_suggestions(0.9, review=8, seed=3)
    shown = session.peek(8)
    assert {q.item_id for q in shown} == set(batch.sample) and {q.strategy for q in shown} == {"spot-check"}
    assert all(q.reason.startswith("spot-check: 1 of 8 random items of ") for q in shown)
    suggestion = dict(zip(batch.proposed["item_id"], batch.proposed["suggestion"]))
    assert all(q.suggestion == suggestion[q.item_id] for q in shown)
    with_boxes = [i for i in batch.sample if suggestion[i]]
    assert len(with_boxes) >= 4
    expected = {}
    for k, item_id in enumerate(batch.sample):
        boxes = list(suggestion[item_id])
        if not boxes:  # "nothing here" kept
            session.label(item_id, [])
            expected[item_id] = True
        elif k % 2 == 0:  # every box redrawn a pixel off: the same boxes
            session.label(item_id, [(b.x + 1, b.y, b.w, b.h - 1, b.label) for b in boxes])
            expected[item_id] = True
        else:  # a box missing
            session.label(item_id, boxes[1:] if len(boxes) > 1 else [])
            expected[item_id] = False
    seen = batch.reviewed().set_index("item_id")
    assert seen["agrees"].to_dict() == expected
    p = batch.precision()
    assert (p["reviewed"], p["agreed"]) == (8, sum(expected.values()))
    # a box of another class, or one more, disagrees too; a box moved half its size away as well
    item_id = with_boxes[0]
    box = suggestion[item_id][0]
    for label, agrees in [(list(suggestion[item_id]), True),
                          ([Box(box.x, box.y, box.w, box.h, "b" if box.label == "a" else "a"),
                            *suggestion[item_id][1:]], False),
                          ([*suggestion[item_id], Box(20, 0, 8, 8, "a")], False),
                          ([Box(box.x + box.w / 2, box.y, box.w, box.h, box.label),
                            *suggestion[item_id][1:]], False)]:
        assert suggest_parts.agrees(session, item_id, label, suggestion[item_id]) is agrees
    check_accept(session, batch)


def test_the_real_detector_suggests_what_it_serves(tmp_path):
    from workbench.data.box_digits import box_digits
    from workbench.learn.box_detector import BoxDetector

    pool, test = box_digits(60, n_test=10, seed=2)
    session = Session(pool, tmp_path / "digits", test=test, watch=False, learner=BoxDetector(steps=60))
    session.label_many({i: pool.true_label(i) for i in pool.item_ids[:30]})
    session.retrain()
    model = session.rounds.model
    positions = np.arange(30, 60)
    suggestions, sure = suggest_parts.proposals(session, model, positions)
    threshold = model.predictor.detector.threshold
    for p, boxes, c in zip(positions, suggestions, sure):
        served, least = model.predictor.boxes_of(p)
        below = [d[5] for d in model.predictor.detections([p])[0] if d[5] < threshold]
        assert boxes == served and c == pytest.approx(min(least, 1 - max(below, default=0.0)))
    assert np.all((sure >= 0) & (sure <= 1))
    bar = float(np.quantile(sure, 0.5))
    batch = session.accept_suggestions(bar, review=2)
    by_item = dict(zip(pool.item_ids[positions], sure))
    assert len(batch) <= 15 and all(by_item[i] == pytest.approx(c) and c >= bar for i, c in
                                    zip(batch.proposed["item_id"], batch.proposed["confidence"]))
    session.close()
