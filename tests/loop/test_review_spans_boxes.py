"""Reviewing the labels of a spans or a boxes pool (workbench/loop/review_parts.py): one review
card per item with a doubt, most suspicious first, its reason naming every doubted part; the
widget shows the item's own spans or boxes; keeping them is a `confirm`, changing them a
`relabel`, both in the role "review"; `defer`; the rest ranked again after a round; a confirmed
item back only on new evidence. Most tests fix the suspects (as tests/loop/test_review.py does)
to pin the mechanics down; one runs the real held-out tagger on planted mistakes."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from workbench import Pool, Session
from workbench.data.boxes import Box, BoxList
from workbench.data.entity_texts import entities
from workbench.data.spans import Span, SpanList, tokens
from workbench.loop import cleaning_boxes, cleaning_spans
from workbench.loop.review_parts import NEW_EVIDENCE
from workbench.ui.label_payload import item_payload, label_names
from workbench.ui.label_widget import LabelWidget


@pytest.fixture(scope="module")
def texts():
    return entities(40, n_test=10, seed=0)


@pytest.fixture
def spans(texts, tmp_path):
    pool, test = texts
    session = Session(pool, tmp_path / "spans", test=test, watch=False, audit_every=0)
    session.label_many({i: pool.true_label(i) for i in pool.item_ids[:30]})
    yield session
    session.close()


def span_rows(session, rows) -> pd.DataFrame:
    """A spans suspects table from (item_id, kind, span index or (start, end), suggested, p)."""
    out = []
    for item_id, kind, where, suggested, p in rows:
        text = session.pool.text_of(item_id)
        if kind == "given":
            span = session.label_of(item_id)[where]
            start, end, given = span.start, span.end, span.label
        else:
            (start, end), given = where, None
        out.append([item_id, kind, start, end, text[start:end], given, suggested, p,
                    1 - p if kind == "given" else p, 0])
    table = pd.DataFrame(out, columns=cleaning_spans.COLUMNS)
    return table.sort_values("suspicion", ascending=False, kind="stable", ignore_index=True)


def fix_suspects(monkeypatch, table):
    monkeypatch.setattr(Session, "suspects", lambda self, k=None, **o: table if k is None else table.head(k))


def free_word(session, item_id) -> tuple[int, int]:
    """A word of the text that no span of its label covers (a span left out)."""
    label = session.label_of(item_id)
    return next((a, b) for a, b in tokens(session.pool.text_of(item_id))
                if b - a > 3 and not any(s.start < b and a < s.end for s in label))


def other(label: str) -> str:
    return "LOC" if label != "LOC" else "ORG"


def planted(session):
    """Doubts on four texts, and an agreeing row on a fifth: (ids, the table)."""
    a, b, c, d, e = session.pool.item_ids[:5]
    first = session.label_of(a)[0]
    rows = [(b, "given", 0, None, 0.001),                     # B: a span the tagger leaves blank
            (a, "given", 0, other(first.label), 0.02),        # A: a span with another label
            (a, "left out", free_word(session, a), "ORG", 0.7),  # ... and a word left out
            (a, "given", 1, session.label_of(a)[1].label, 0.6),  # agrees: no doubt
            (c, "given", 0, session.label_of(c)[0].label, 0.01),  # C: agrees only: not asked
            (d, "given", 0, None, 0.1),
            (e, "given", 0, None, 0.2)]
    return (a, b, c, d, e), span_rows(session, rows)


def test_a_spans_review_asks_about_items_most_suspicious_first_naming_every_doubt(spans, monkeypatch):
    (a, b, c, d, e), table = planted(spans)
    fix_suspects(monkeypatch, table)
    review = spans.review()
    assert review["item_id"].tolist() == [b, a, d, e]  # C's only row agrees
    assert review["score"].tolist() == pytest.approx([0.999, 0.98, 0.9, 0.8])
    text = spans.pool.text_of(a)
    first = spans.label_of(a)[0]
    start, end = free_word(spans, a)
    reason = review.set_index("item_id").loc[a, "reason"]
    assert reason == (f"'{text[first.start:first.end]}' given {first.label}, the held-out tagger says "
                      f"{other(first.label)} (p of {first.label} 0.02); '{text[start:end]}' left out "
                      f"(the held-out tagger marks ORG, p 0.7)")
    assert "marks nothing there" in review.set_index("item_id").loc[b, "reason"]
    shown = spans.peek(4)
    assert [(q.item_id, q.strategy) for q in shown] == [(i, "review") for i in (b, a, d, e)]
    assert shown[1].reason == reason
    # what the held-out tagger would make of A: its label with the doubts applied
    fixed = SpanList(sorted([Span(first.start, first.end, other(first.label)), Span(start, end, "ORG"),
                             *spans.label_of(a)[1:]]))
    assert shown[1].suggestion == fixed and shown[1].confidence is None
    assert spans.review(2)["item_id"].tolist() == [b, a]  # the k most suspicious items


def test_the_widget_shows_a_review_items_own_spans_and_records_what_the_person_did(spans, monkeypatch):
    (a, b, c, d, e), table = planted(spans)
    fix_suspects(monkeypatch, table)
    widget = LabelWidget(spans, buffer_size=4, charts=False)
    sent = []
    widget.send = lambda content, buffers=None: sent.append(content)

    def message(type_, **content):
        n = len(sent)
        widget._on_msg(widget, {"type": type_, "seq": len(sent), **content}, [])
        return [m for m in sent[n:] if m.get("action") == type_][-1]

    try:
        spans.review()  # the widget refreshes at once ("focus_changed")
        items = [m for m in sent if m["type"] == "reset"][-1]["items"]
        assert [(i["item_id"], i["strategy"]) for i in items] == [(i, "review") for i in (b, a, d, e)]
        for item in items:  # the label the item has, in the browser's units: what the edit starts from
            assert item["given"] == label_names(spans, spans.label_of(item["item_id"]), item["item_id"])
            assert item["given"] and item["reason"]
        n = len(spans.store.events())
        # Enter on B, its spans untouched: a confirm that carries them
        reply = message("confirm", item_id=b, label=items[0]["given"], query="review",
                        event_id=uuid.uuid4().hex)
        assert reply["type"] == "ack"
        # A: a span relabeled, as the held-out tagger says: a relabel
        changed = [[s, t, other(lab) if i == 0 else lab] for i, (s, t, lab) in enumerate(items[1]["given"])]
        assert message("label", item_id=a, label=changed, source="human", query="review",
                       event_id=uuid.uuid4().hex)["type"] == "ack"
        # D: saved with the very spans it has (in another order): a confirm, not a relabel
        assert message("label", item_id=d, label=items[2]["given"][::-1], source="human", query="review",
                       event_id=uuid.uuid4().hex)["type"] == "ack"
        # E: later; nothing written
        assert message("defer", item_id=e)["type"] == "ack"
        log = spans.store.events().iloc[n:]
        assert log[["item_id", "action", "query"]].values.tolist() == [
            [b, "confirm", "review"], [a, "relabel", "review"], [d, "confirm", "review"]]
        assert log["label"].tolist()[0] == str(spans.label_of(b)) and spans.label_of(a)[0].label == other(
            spans.pool.true_label(a)[0].label)
        assert e not in [q.item_id for q in spans.peek(4)]
        assert sorted(spans.store.confirmations().index) == [b, d]
        # the next review leaves the standing confirmations out and brings E back (and A: its
        # label changed, and these fixed suspects still doubt it)
        assert spans.review()["item_id"].tolist() == [a, e]
    finally:
        widget.close()


def test_a_confirmed_text_comes_back_only_on_new_evidence(spans, monkeypatch):
    (a, b, c, d, e), table = planted(spans)
    fix_suspects(monkeypatch, table)
    spans.review()
    spans.confirm(e)
    spans.confirm(d)
    assert spans.review()["item_id"].tolist() == [b, a]
    at = table.index[table["item_id"] == e][0]
    table.loc[at, "suspicion"] = 0.8 + NEW_EVIDENCE * 0.9  # about the same doubt
    assert e not in spans.review()["item_id"].tolist()
    table.loc[at, "suspicion"] = 0.8 + NEW_EVIDENCE * 1.5  # a doubt grown by more than NEW_EVIDENCE
    assert e in spans.review()["item_id"].tolist()
    spans.label(d, SpanList(spans.label_of(d)[1:]))  # its label changed: the confirmation is gone
    assert d in spans.review()["item_id"].tolist()


def test_an_open_spans_review_is_ranked_again_after_a_round(spans, monkeypatch):
    (a, b, c, d, e), table = planted(spans)
    fix_suspects(monkeypatch, table)
    spans.review()
    spans.confirm(b)
    # the new model doubts E most, and A no longer
    table = span_rows(spans, [(e, "given", 0, None, 0.01), (d, "given", 0, None, 0.3)])
    fix_suspects(monkeypatch, table)
    spans.retrain()
    shown = spans.peek(3)
    assert [(q.item_id, q.strategy) for q in shown[:2]] == [(e, "review"), (d, "review")]
    assert a not in [q.item_id for q in shown] and b not in [q.item_id for q in shown]
    assert shown[0].reason.endswith("the held-out tagger marks nothing there (p of "
                                    f"{spans.label_of(e)[0].label} 0.01)")


def test_the_real_held_out_tagger_finds_planted_mistakes(texts, tmp_path):
    pool, test = texts
    session = Session(pool, tmp_path / "real", test=test, watch=False, audit_every=0)
    ids = pool.item_ids
    session.label_many({i: pool.true_label(i) for i in ids[:30]})
    truth = pool.true_label(ids[0])
    session.label(ids[0], SpanList(Span(s.start, s.end, other(s.label)) for s in truth))  # every label wrong
    session.label(ids[1], SpanList(pool.true_label(ids[1])[1:]))  # a name left out
    review = session.review(6)
    assert ids[0] in review["item_id"].tolist()[:3]
    card = review.set_index("item_id").loc[ids[0]]
    assert card["doubts"] >= 2 and card["reason"].count("; ") == card["doubts"] - 1
    assert (review["score"].diff().dropna() <= 0).all()
    assert isinstance(card["suggested"], SpanList)
    session.close()


# -- boxes ----------------------------------------------------------------------------------------
CLASSES = ["cat", "dog"]
W, H = 48, 32


def boxes_truth(i: int) -> list[tuple]:
    return [(2 + i, 3, 10, 8, "cat"), (20, 12, 15, 9, "dog")] if i % 2 == 0 else [(5, 5, 6, 6, "dog")]


@pytest.fixture
def boxes(tmp_path):
    from workbench.learn.box_detector import BoxDetector

    images = np.random.default_rng(0).random((12, H, W)).astype(np.float32)
    pool = Pool.from_arrays(images, y=[boxes_truth(i) for i in range(12)], task="boxes", classes=CLASSES,
                            name="boxes")
    session = Session(pool, tmp_path / "boxes", watch=False, audit_every=0,
                      learner=BoxDetector(labels=CLASSES, steps=40))
    session.label_many({i: pool.true_label(i) for i in pool.item_ids[:10]})
    yield session
    session.close()


def box_rows(rows) -> pd.DataFrame:
    """A boxes suspects table from (item_id, kind, (x, y, w, h), given, suggested, p, suspicion)."""
    table = pd.DataFrame([[i, kind, *xywh, given, said, 0.0, p, s, 0]
                          for i, kind, xywh, given, said, p, s in rows], columns=cleaning_boxes.COLUMNS)
    return table.sort_values("suspicion", ascending=False, kind="stable", ignore_index=True)


def test_a_boxes_review_shows_the_images_own_boxes_and_records_confirm_relabel_defer(boxes, monkeypatch):
    a, b, c, d = boxes.pool.item_ids[:4]  # a, c: a cat and a dog; b, d: one dog
    table = box_rows([(a, "given", (2, 3, 10, 8), "cat", "dog", 0.1, 0.9),      # another class
                      (a, "left out", (30.5, 20, 8, 8), None, "cat", 0.6, 0.6),  # an object without a box
                      (a, "given", (20, 12, 15, 9), "dog", "dog", 0.9, 0.1),     # agrees
                      (b, "given", (5, 5, 6, 6), "dog", "cat", 0.05, 0.95),
                      (c, "given", (4, 3, 10, 8), "cat", "dog", 0.3, 0.7),
                      (d, "given", (5, 5, 6, 6), "dog", "cat", 0.4, 0.6)])
    fix_suspects(monkeypatch, table)
    review = boxes.review()
    assert review["item_id"].tolist() == [b, a, c, d]
    reasons = review.set_index("item_id")["reason"]
    assert reasons[a] == ("box 2,3 10x8 cat: the held-out crop classifier says dog (p of cat: 0.10); "
                          "no box where the held-out detector finds 30.5,20 8x8 cat (score 0.60)")
    shown = boxes.peek(4)
    assert [(q.item_id, q.strategy) for q in shown] == [(i, "review") for i in (b, a, c, d)]
    payload = item_payload(boxes, shown[1])
    assert payload["given"] == [[2, 3, 10, 8, "cat"], [20, 12, 15, 9, "dog"]]  # the image's own boxes
    assert sorted(map(tuple, payload["suggestion"])) == sorted(
        [(2, 3, 10, 8, "dog"), (20, 12, 15, 9, "dog"), (30.5, 20, 8, 8, "cat")])  # the doubts applied
    n = len(boxes.store.events())
    boxes.confirm(shown[0])                                              # kept
    boxes.label(shown[1], [(2, 3, 10, 8, "dog"), (20, 12, 15, 9, "dog")])  # fixed
    with pytest.raises(ValueError, match="is shown for review and has a label"):
        boxes.skip(shown[2])
    boxes.defer(shown[2])                                                # later
    log = boxes.store.events().iloc[n:]
    assert log[["item_id", "action", "query"]].values.tolist() == [[b, "confirm", "review"],
                                                                   [a, "relabel", "review"]]
    assert log["label"].iloc[0] == str(BoxList([Box(5, 5, 6, 6, "dog")]))
    assert boxes.peek(1)[0].item_id == d  # C left the review for now
    # again: B's confirmation stands, A's label changed (still doubted here), C deferred comes back
    assert boxes.review()["item_id"].tolist() == [a, c, d]


def test_the_real_held_out_detector_reviews_boxes(boxes):
    review = boxes.review(3)
    assert 1 <= len(review) <= 3 and (review["score"].diff().dropna() <= 0).all()
    assert all(r.startswith(("box ", "no box")) for r in review["reason"])
    shown = boxes.peek(len(review))
    assert [q.strategy for q in shown] == ["review"] * len(review)
    assert [item_payload(boxes, q)["given"] for q in shown] == [
        label_names(boxes, boxes.label_of(q.item_id), q.item_id) for q in shown]


@pytest.mark.parametrize("k", [-1, 2.5, True, "3"])
def test_review_wants_a_whole_number_of_items(spans, k):
    # head(-1) was every suspect but the last, head(2.5) a pandas TypeError
    with pytest.raises(ValueError, match=r"k must be a whole number of items >= 0 \(or None: all\)"):
        spans.review(k)
