"""Hostile input against text spans (issue 21): every value that is no span list of its text is
a ValueError that names it and stores nothing; words with combining marks are one token."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import Pool, Session
from workbench.data.spans import snap, span_list, tokens

TEXT = "Alice met Bob."
LABELS = ["LOC", "PER"]


@pytest.mark.parametrize("bad, words", [
    ([(np.array([0]), 5, "PER")], r"start array\(\[0\]\) is not a whole number"),
    ([{"start": 0, "end": 5, "label": "PER", "score": 0.3}], r"'score'.*a span is"),
    ([(0, 5, 1)], "label 1 is not a string"),
    ([(0, 5, None)], "label None is not a string"),
    ('{"v": true, "spans": [[0, 5, "PER"]]}', "schema version True"),
    ('{"v": 1.0, "spans": [[0, 5, "PER"]]}', "schema version 1.0"),
    ('{"v": 1, "spans": [[0, 5, "PER"]], "note": "x"}', r"'note'"),
    ('"Alice"', r"label '\"Alice\"' is not the JSON of a list of spans"),
    ("5", "label '5' is not the JSON of a list of spans"),
    ([(5, 6, "PER")], r"covers only whitespace"),
])
def test_hostile_span_values_are_refused_by_name(bad, words):
    with pytest.raises(ValueError, match=words):
        span_list(bad, TEXT, LABELS)


def test_numpy_offsets_and_labels_are_read_as_python_ones():
    spans = span_list([(np.int64(0), np.int32(5), np.str_("PER"))], TEXT, LABELS)
    assert [type(v) for v in spans[0]] == [int, int, str]


def test_a_session_stores_nothing_for_hostile_spans(tmp_path):
    pool = Pool.from_texts([TEXT, "Bob left."], task="spans", classes=LABELS)
    session = Session(pool, tmp_path / "s", watch=False)
    first = pool.item_ids[0]
    session.label(first, [(0, 5, "PER")])
    before = len(session.store.events())
    for bad in ([(5, 6, "PER")], [(0, 5, 1)], [{"start": 0, "end": 5, "label": "PER", "x": 1}],
                '{"v": true, "spans": []}'):
        with pytest.raises(ValueError):
            session.label(first, bad)
    assert len(session.store.events()) == before
    assert str(session.labels[first]) == '{"v": 1, "spans": [[0, 5, "PER"]]}'
    session.close()


@pytest.mark.parametrize("text, words", [
    ("cafe\u0301 Zoe\u0308!", ["cafe\u0301", "Zoe\u0308", "!"]),  # decomposed accents
    ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # Devanagari: vowel signs and the virama are marks
    ("a 👩\u200d👩\u200d👧 b", ["a", "👩\u200d👩\u200d👧", "b"]),  # one emoji joined by ZWJ
    ("می\u200cخواهم", ["می\u200cخواهم"]),  # Persian: a zero-width non-joiner inside a word
    ("x\r\ny\tz", ["x", "y", "z"]),
    ("a^b `c", ["a", "^", "b", "`", "c"]),  # modifier symbols are no marks
])
def test_a_word_with_combining_marks_is_one_token(text, words):
    assert [text[a:b] for a, b in tokens(text)] == words


def test_a_selection_snaps_to_a_whole_word_with_its_marks():
    text = "cafe\u0301 ok"
    assert snap(text, 0, 2) == (0, 5)


def test_a_text_the_model_is_sure_of_is_not_said_to_make_it_hesitate(tmp_path):
    from workbench.loop.span_rounds import reason

    class Sure:
        def least_sure_token(self, features, position):
            return "Dr", "O", 0.999

    class Model:
        learner, predictor = Sure(), type("P", (), {"features": None})()

    words = reason(None, Model(), "mean_token_entropy", 0.001, 0, "the round-2 model")
    assert words.startswith("mean token entropy 0.00: the round-2 model is sure of every word here")
    assert "hesitates" not in words
