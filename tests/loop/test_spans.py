"""Text spans end to end through the session (issue 21): the pool and its bad input, labels as
span lists held in code points, the token tagger's rounds, the queue ranked by uncertainty with
the model's spans as suggestions, span F1 on held-out texts, reopening, and the parts that say
plainly they are not built for spans yet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench import Pool, Session
from workbench.data.entity_texts import LABELS, entities, entity_texts
from workbench.data.spans import (
    Span,
    SpanList,
    bio_tags,
    code_points_to_utf16,
    snap,
    span_list,
    span_scores,
    spans_from_bio,
    utf16_to_code_points,
)

TEXT = "Alice 😀 met Bob in Paris."  # the emoji is one code point, two UTF-16 units


@pytest.fixture(scope="module")
def data():
    return entities(160, n_test=60, seed=0)


def test_a_span_list_is_checked_against_its_text_and_held_as_versioned_json():
    spans = span_list([(19, 24, "LOC"), {"start": 0, "end": 5, "label": "PER"}, [12, 15, "PER"]],
                      TEXT, ["LOC", "PER"])
    assert spans == SpanList([Span(0, 5, "PER"), Span(12, 15, "PER"), Span(19, 24, "LOC")])
    assert json.loads(str(spans)) == {"v": 1, "spans": [[0, 5, "PER"], [12, 15, "PER"], [19, 24, "LOC"]]}
    assert span_list(str(spans), TEXT, ["LOC", "PER"]) == spans
    assert [TEXT[s.start:s.end] for s in spans] == ["Alice", "Bob", "Paris"]
    assert spans.describe(TEXT) == '0-5 PER "Alice"; 12-15 PER "Bob"; 19-24 LOC "Paris"'
    for bad, words in [([(3, 3, "PER")], "start >= end"), ([(20, 99, "LOC")], "outside the text"),
                       ([(-1, 3, "PER")], "outside the text"), ([(0, 5, "ORG")], "'ORG', which is not among"),
                       ([(0, 5, "PER"), (0, 5, "PER")], "given twice"),
                       ([(0, 5, "PER"), (2, 8, "LOC")], "overlap, and this pool's spans may not"),
                       ([(0.5, 3, "PER")], "not a whole number"),
                       ([(0, 5)], r"a span is \(start, end, label\)"),
                       ("PER", "not the JSON"), ('{"v": 9, "spans": []}', "schema version 9")]:
        with pytest.raises(ValueError, match=words):
            span_list(bad, TEXT, ["LOC", "PER"])
    nested = span_list([(0, 5, "PER"), (0, 15, "LOC")], TEXT, ["LOC", "PER"], overlapping=True)
    assert len(nested) == 2


def test_offsets_are_code_points_whatever_the_browser_counts():
    bob = TEXT.index("Bob")  # 12 code points in; 13 UTF-16 units in JavaScript
    assert code_points_to_utf16(TEXT, bob) == bob + 1
    assert utf16_to_code_points(TEXT, bob + 1) == bob
    assert snap(TEXT, bob + 1, bob + 2) == (bob, bob + 3)  # a cut word is taken whole
    assert snap(TEXT, 6, 7) == (6, 7) and snap(TEXT, 5, 6) is None  # the emoji: a token; a space: none
    toks, tags = bio_tags(TEXT, [Span(0, 5, "PER"), Span(19, 24, "LOC")])
    assert tags == ["B-PER", "O", "O", "O", "O", "B-LOC", "O"]
    assert spans_from_bio(toks, tags) == SpanList([Span(0, 5, "PER"), Span(19, 24, "LOC")])


def test_span_scores_count_exact_matches_only():
    truth = [[Span(0, 5, "PER"), Span(12, 15, "PER"), Span(19, 24, "LOC")]]
    predicted = [[Span(0, 5, "PER"), Span(12, 15, "LOC"), Span(19, 25, "LOC")]]  # a label and a boundary off
    scores = span_scores(truth, predicted, LABELS)
    assert scores["precision"] == scores["recall"] == scores["f1"] == pytest.approx(1 / 3)
    assert scores["f1_per_label"]["PER"] == pytest.approx(2 / 3) and scores["f1_per_label"]["ORG"] != 0.0


def test_the_pool_takes_spans_of_texts_only(tmp_path):
    texts, spans = entity_texts(5, seed=1)
    pool = Pool.from_texts(texts, y=spans, task="spans")
    assert pool.task == "spans" and pool.classes == sorted({s[2] for row in spans for s in row})
    first = pool.item_ids[0]
    assert pool.true_label(first) == [Span(*s) for s in spans[0]]
    assert pool.text_of(first) == texts[0]
    with pytest.raises(ValueError, match=r"y\[1\]: span .* outside the text"):
        Pool.from_texts(["a b", "c d"], y=[[], [(0, 9, "X")]], task="spans")
    with pytest.raises(ValueError, match="task='spans' marks stretches of texts; this is a vector pool"):
        Pool.from_arrays(np.zeros((2, 2)), task="spans")
    with pytest.raises(ValueError, match="test=Pool.from_texts"):
        Pool(np.zeros((1, 3)), kind="text", items=pd.DataFrame({"text": ["a b"]}), y=[[]], task="spans",
             X_test=np.zeros((1, 3)), y_test=[[]])
    assert pool.subset([0, 1]).task == "spans"


def test_labels_are_span_lists_stored_in_code_points_and_bad_ones_store_nothing(tmp_path):
    pool = Pool.from_texts([TEXT, "Carol left Acme."], task="spans", classes=["LOC", "ORG", "PER"])
    session = Session(pool, tmp_path / "s", watch=False)  # no ground truth: the classes given
    first, second = pool.item_ids
    event = session.label(first, [(12, 15, "PER"), (0, 5, "PER")])
    assert json.loads(event.label)["spans"] == [[0, 5, "PER"], [12, 15, "PER"]]
    assert session.labels[first] == SpanList([Span(0, 5, "PER"), Span(12, 15, "PER")])
    session.label(second, [])  # nothing to mark is a label too
    assert session.blame_text(first).startswith("labeled 2 spans: PER, PER by ")  # not the JSON
    assert session.blame_text(second).startswith("labeled no spans by ")
    before = len(session.store.events())
    for bad in [[(0, 99, "PER")], [(0, 5, "DATE")], "PER", [(0, 5, "PER"), (3, 8, "LOC")]]:
        with pytest.raises(ValueError):
            session.label(first, bad)
    assert len(session.store.events()) == before
    session.undo()
    assert second not in session.labels
    session.close()
    again = Session(pool, tmp_path / "s", watch=False)
    assert again.labels == {first: SpanList([Span(0, 5, "PER"), Span(12, 15, "PER")])}
    again.close()
    one_label = Session(Pool.from_texts(["Paris"], task="spans", classes=["LOC"]), tmp_path / "one",
                        watch=False)  # one kind of span is a task; one class is not
    one_label.close()
    with pytest.raises(Exception, match="'spans' labels, not 'single' ones"):
        Session(Pool.from_texts(["a", "b"], y=["x", "y"]), tmp_path / "s", watch=False)


def test_rounds_queue_suggest_and_score_span_f1(data, tmp_path):
    pool, test = data
    session = Session(pool, tmp_path / "s", test=test, watch=False)
    assert session.strategy_name == "mean_token_entropy"
    for _ in range(20):
        item = session.next()
        session.label(item, pool.true_label(item.item_id))
    session.retrain()
    row = session.history.iloc[-1]
    assert row["n_labels"] == 20 and row["eval_on"] == "held-out test texts (60)"
    assert 0.5 < row["span_f1"] <= 1 and np.isnan(row["accuracy"])
    item = session.next()
    assert item.strategy == "mean_token_entropy" and isinstance(item.suggestion, SpanList)
    assert 0 <= item.confidence <= 1 and item.score >= 0
    assert item.reason.startswith(
        f"mean token entropy {item.score:.2f} nats: the round-1 model hesitates over this text, most over")
    assert session.suggest(item.item_id) == (item.suggestion, pytest.approx(item.confidence))
    # the queue ranks by uncertainty, most unsure first, and the score is the model's own figure
    queue = session.serving.queue
    scores = [queue.entry(k)[2] for k in range(len(queue)) if queue.entry(k)[1] == "mean_token_entropy"]
    assert len(scores) > 50 and scores == sorted(scores, reverse=True)
    model = session.rounds.model
    own = model.learner.uncertainty(model.predictor.features, [item.position])[0, 1]
    assert item.score == pytest.approx(own)
    for _ in range(40):
        item = session.next()
        session.label(item, pool.true_label(item.item_id))
    session.retrain()
    assert session.history["span_f1"].iloc[-1] > 0.7
    labels, history = dict(session.labels), session.history
    session.close()
    again = Session(pool, tmp_path / "s", test=test, watch=False)
    again.wait_for_training()
    assert dict(again.labels) == labels
    assert list(again.history["span_f1"]) == list(history["span_f1"])
    assert again.next().strategy == "mean_token_entropy"
    again.close()


def test_audit_texts_score_a_session_without_a_test_pool(data, tmp_path):
    pool, _ = data
    session = Session(pool, tmp_path / "s", audit_every=3, watch=False, strategy="least_confident_token")
    for _ in range(30):
        item = session.next()
        session.label(item, pool.true_label(item.item_id))
    session.retrain()
    row = session.history.iloc[-1]
    assert row["eval_on"].startswith("random audit sample (") and row["n_eval"] >= 5
    assert row["n_labels"] == 30 - row["n_eval"]
    assert session.next().reason.startswith("least confident token")
    session.close()


def test_a_strategy_or_learner_that_does_not_fit_spans_is_named(data, tmp_path):
    pool, _ = data
    with pytest.raises(ValueError, match="unknown strategy 'margin' for a 'spans' pool"):
        Session(pool, tmp_path / "a", strategy="margin", watch=False)
    from workbench import logistic_regression
    with pytest.raises(ValueError, match="needs a learner that tags spans"):
        Session(pool, tmp_path / "b", learner=logistic_regression(), watch=False)


def test_the_entities_set_is_offline_exact_and_keeps_the_test_names_out_of_the_pool():
    texts, spans = entity_texts(300, seed=2, half=0)
    test_texts, test_spans = entity_texts(300, seed=2, half=1)
    assert (texts, spans) == entity_texts(300, seed=2, half=0)  # the same set for the same seed
    for text, marks in zip(texts, spans):
        span_list(marks, text, LABELS)  # every offset inside its text, no overlaps
    names = {text[s:e] for text, marks in zip(texts, spans) for s, e, _ in marks}
    test_names = {text[s:e] for text, marks in zip(test_texts, test_spans) for s, e, _ in marks}
    assert len(names) > 100 and not names & test_names
    assert {label for marks in spans for _, _, label in marks} == set(LABELS)
    assert any("🎉" in t for t in texts) and any(not m for m in spans)  # an emoji; texts with no names


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_suspects_put_planted_wrong_labels_and_names_left_out_at_the_top(tmp_path):
    pool, _ = entities(300, n_test=10, seed=4)
    session = Session(pool, tmp_path / "s", watch=False, seed=4)
    while len(session.labels) < 120:  # labels chosen by the queue, as a person would give them
        for item in session.peek(30):
            session.label(item, pool.true_label(item.item_id))
        session.retrain()
    rng = np.random.default_rng(0)
    docs = sorted(i for i in session.labels if len(session.labels[i]) >= 2)
    planted = {}
    for j, doc in enumerate(rng.choice(docs, 6, replace=False)):
        spans = list(session.labels[doc])
        if j % 2 == 0:  # a wrong label
            spans[0] = Span(spans[0].start, spans[0].end, next(x for x in LABELS if x != spans[0].label))
            planted[doc] = ("given", spans[0].start)
        else:  # a name left out
            planted[doc] = ("left out", spans.pop(0).start)
        session.label(doc, spans)
    table = session.suspects()
    assert list(table.columns) == ["item_id", "kind", "start", "end", "words", "given", "suggested",
                                   "p_held_out", "suspicion", "fold"]
    assert table["suspicion"].is_monotonic_decreasing and table["fold"].between(0, 4).all()
    top = table.head(12)
    found = {(r.item_id, r.kind, r.start) for r in top.itertuples()}
    hits = [doc for doc, (kind, start) in planted.items() if (doc, kind, start) in found]
    assert len(hits) >= 5, top
    wrong = next(r for r in top.itertuples() if r.kind == "given" and r.item_id in planted)
    truth = {(s.start, s.end): s.label for s in map(lambda s: Span(*s), pool.true_label(wrong.item_id))}
    assert wrong.suggested == truth[(wrong.start, wrong.end)] != wrong.given  # what the text says
    assert pool.text_of(wrong.item_id)[wrong.start:wrong.end] == wrong.words
    assert len(session.suspects(3)) == 3
    with pytest.raises(ValueError, match="folds must be an int of at least 2"):
        session.suspects(folds=1)
    session.close()
