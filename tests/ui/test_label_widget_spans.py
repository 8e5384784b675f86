"""LabelWidget on a spans session, without a browser: the browser counts UTF-16 units, the store
code points, and the widget converts at the edge both ways (an emoji before a span is two units
there, one code point here); an item goes out with its text and the tokens a selection snaps
to; a label is a list of spans both ways ([] marks nothing); a bad list is an error that writes
nothing. `Browser` (tests/ui/test_label_widget.py) stands in for the front end; the real one is
tested in tests/browser/test_label_widget_spans.py."""

from __future__ import annotations

import json
import uuid

import pytest
import traitlets
from test_label_widget import Browser, events

from workbench import Pool, Session
from workbench.data.entity_texts import entities
from workbench.data.spans import Span, code_points_to_utf16, tokens
from workbench.data.spans import SpanList as _SpanList
from workbench.ui.label_payload import label_names, label_now, returned_payload
from workbench.ui.label_widget import LabelWidget
from workbench.ui.span_payload import spans_from_browser, spans_to_browser

LABELS = ["LOC", "ORG", "PER"]
# Every text has an emoji (two UTF-16 units, one code point) before its names.
TEXTS = ["Party 🎉 with Alice Moreau in Paris.", "🎉🎉 Bob Okafor joined Acme Corp.",
         "No names here 🎉, none at all.", "In Oslo 🎉 Carla Mendes met Globex."]


def truth_of(text: str) -> list[tuple]:
    marks = {"Alice Moreau": "PER", "Paris": "LOC", "Bob Okafor": "PER", "Acme Corp": "ORG",
             "Oslo": "LOC", "Carla Mendes": "PER", "Globex": "ORG"}
    return sorted((text.index(n), text.index(n) + len(n), lab) for n, lab in marks.items() if n in text)


@pytest.fixture
def pool():
    return Pool.from_texts(TEXTS, y=[truth_of(t) for t in TEXTS], task="spans", classes=LABELS,
                           name="emoji-spans", item_ids=[f"t{i}" for i in range(len(TEXTS))])


@pytest.fixture
def session(pool, tmp_path):
    s = Session(pool, tmp_path / "labels.wbstore", watch=False)
    yield s
    s.close()


@pytest.fixture
def browser(session):
    widget = LabelWidget(session, buffer_size=3, charts=False)
    yield Browser(widget)
    widget.close()


def SpanList(spans=()) -> _SpanList:  # noqa: N802 - reads like the class
    """A SpanList of (start, end, label) tuples, as the session gives it."""
    return _SpanList(Span(*s) for s in spans)


def utf16(text: str, spans) -> list[list]:
    """Spans as the browser counts them."""
    return [[code_points_to_utf16(text, s), code_points_to_utf16(text, e), lab] for s, e, lab in spans]


def js_slice(text: str, start: int, end: int) -> str:
    """What `text.slice(start, end)` gives in JavaScript (UTF-16 units)."""
    return text.encode("utf-16-le")[2 * start:2 * end].decode("utf-16-le")


def test_the_widget_knows_the_task_and_offers_no_grid(browser, session):
    widget = browser.widget
    assert session.task == "spans" and widget.task == "spans" and widget.overlapping is False
    assert widget.class_names == LABELS and widget.class_keys == ["1", "2", "3"]
    with pytest.raises(traitlets.TraitError, match="the grid labels one class per item"):
        widget.mode = "grid"
    assert widget.mode == "single"


def test_an_item_goes_out_with_its_text_and_tokens_in_utf16_units(browser, pool):
    browser.hello()
    for item in browser.of_type("reset")[-1]["items"]:
        text = pool.text_of(item["item_id"])
        assert item["text"] == text and item["units"] == "utf16"
        assert item["render"] == {"kind": "text", "text": text}
        words = [text[s:e] for s, e in tokens(text)]
        assert [js_slice(text, s, e) for s, e in item["tokens"]] == words  # the same words there
        assert "🎉" in words  # an emoji is a token of its own
        assert item["suggestion"] is None and item["given"] is None  # no model, no label yet


def test_spans_from_the_browser_are_stored_in_code_points(browser, session, pool):
    ids = browser.hello()
    item = browser.current
    text = pool.text_of(item["item_id"])
    truth = truth_of(text)
    assert truth and all(s > text.index("🎉") for s, _, _ in truth)  # every name after an emoji
    sent = utf16(text, truth)
    assert sent != [list(s) for s in truth]  # the offsets differ there
    assert [js_slice(text, s, e) for s, e, _ in sent] == [text[s:e] for s, e, _ in truth]
    reply = browser.press(sent[::-1])  # in any order
    assert reply["type"] == "ack" and reply["action"] == "label"
    stored = events(session)
    assert len(stored) == 1 and stored[0][:2] == ("label", ids[0])
    assert json.loads(stored[0][2]) == {"v": 1, "spans": [list(s) for s in truth]}
    assert session.label_of(ids[0]) == SpanList(truth)
    assert session.store.events().iloc[0]["query"] == item["strategy"]
    # What the browser gets back about it (undo brings it back, a review shows it): UTF-16.
    assert label_now(session, ids[0]) == sent
    assert returned_payload(session, ids[0], reason="brought back by undo")["given"] == sent


def test_an_empty_list_is_a_label_nothing_to_mark(browser, session):
    ids = browser.hello()
    assert browser.press([])["type"] == "ack"
    assert events(session) == [("label", ids[0], '{"v": 1, "spans": []}')]
    assert session.label_of(ids[0]) == SpanList() and session.is_done(ids[0])


@pytest.mark.parametrize(("value", "says"), [
    ("PER", "a spans label is a list of [start, end, label] spans"),
    ({"spans": []}, "a spans label is a list of [start, end, label] spans"),
    ([[0, 5]], "a span from the browser is [start, end, label]"),
    ([[0, 5, "PER"], "x"], "a span from the browser is [start, end, label]"),
    ([[0, "5", "PER"]], "is not an offset into its text"),
    ([[0, 9999, "PER"]], "is not an offset into its text"),
    ([[0, 5, "DATE"]], "which is not among the labels"),
    ([[3, 3, "PER"]], "start >= end"),
    ([[0, 5, "PER"], [0, 5, "PER"]], "given twice"),
    ([[0, 5, "PER"], [2, 8, "ORG"]], "overlap, and this pool's spans may not"),
])
def test_a_bad_list_is_an_error_and_stores_nothing(browser, session, value, says):
    ids = browser.hello()
    held = browser.holding()
    reply = browser("label", item_id=ids[0], label=value, query="cold-start", event_id=uuid.uuid4().hex)
    assert reply["type"] == "error" and reply["action"] == "label" and reply["item_id"] == ids[0]
    assert says in reply["message"] and says in browser.widget.error
    assert events(session) == [] and not session.is_done(ids[0])
    assert browser.holding() == held  # nothing was prefetched in its place
    browser("label", item_id=ids[0], label=[], query="cold-start")  # a good one clears it
    assert browser.widget.error == "" and len(events(session)) == 1


def test_an_offset_inside_an_emoji_is_read_as_after_it(session, pool):
    text = pool.text_of("t0")
    at = code_points_to_utf16(text, text.index("🎉"))
    spans = spans_from_browser(session, [[at, at + 2, "ORG"]], "t0")  # the emoji, both units
    assert spans == SpanList([(text.index("🎉"), text.index("🎉") + 1, "ORG")])


def test_relabel_undo_and_relabel_of_an_earlier_item(browser, session, pool):
    ids = browser.hello()
    first = browser.current["item_id"]
    text = pool.text_of(first)
    truth = truth_of(text)
    browser.press(utf16(text, truth))
    browser.press([])
    # Undo takes back exactly the last label; the item comes back unlabeled.
    reply = browser.undo()
    assert reply["type"] == "ack" and [p["item_id"] for p in reply["undone"]] == [ids[1]]
    assert reply["undone"][0]["given"] is None and reply["undone"][0]["text"] == pool.text_of(ids[1])
    assert session.label_of(ids[1]) is None
    # Walked back: the earlier item relabeled (one span relabeled, one deleted).
    changed = [(truth[0][0], truth[0][1], "ORG")]
    reply = browser("label", item_id=first, label=utf16(text, changed), source="human",
                    query="cold-start", event_id=uuid.uuid4().hex)
    assert reply["type"] == "ack"
    assert [e[0] for e in events(session)] == ["label", "label", "undo", "relabel"]
    assert session.label_of(first) == SpanList(changed)


def test_the_public_label_method_takes_code_points(browser, session, pool):
    head = session.next().item_id
    text = pool.text_of(head)
    truth = truth_of(text)
    event = browser.widget.label(truth, head)
    assert session.label_of(head) == SpanList(truth) and event.label == str(SpanList(truth))


def test_the_models_spans_go_to_the_browser_in_utf16_units(tmp_path):
    pool, test = entities(80, n_test=20)
    s = Session(pool, tmp_path / "labels.wbstore", test=test, watch=False)
    try:
        for item_id in pool.item_ids[:15]:
            s.label(item_id, pool.true_label(item_id))
        s.retrain()
        widget = LabelWidget(s, buffer_size=4, charts=False)
        browser = Browser(widget)
        browser.hello()
        items = browser.of_type("reset")[-1]["items"]
        assert items
        for item in items:
            suggestion, _ = s.suggest(item["item_id"])
            text = pool.text_of(item["item_id"])
            assert isinstance(suggestion, _SpanList) and item["suggestion"] == utf16(text, suggestion)
            assert isinstance(item["confidence"], float)
        # Enter on the model's spans: stored as the suggestion accepted, in code points.
        item = browser.current
        suggestion, _ = s.suggest(item["item_id"])
        assert browser.press(item["suggestion"], source="suggestion")["type"] == "ack"
        last = s.store.events().iloc[-1]
        assert last["label"] == str(suggestion) and last["source"] == "suggestion"
        # What the model now thinks of an item the view kept through a reset.
        browser("suggest", item_id=browser.current["item_id"])
        message = browser.of_type("suggestion")[-1]
        text = pool.text_of(browser.current["item_id"])
        assert message["suggestion"] == utf16(text, s.suggest(browser.current["item_id"])[0])
        widget.close()
    finally:
        s.close()


def test_label_names_and_spans_to_browser(session, pool):
    text = pool.text_of("t1")  # two emoji first: every offset shifts by two
    truth = truth_of(text)
    assert label_names(session, None, "t1") is None
    assert label_names(session, SpanList(truth), "t1") == [[s + 2, e + 2, lab] for s, e, lab in truth]
    assert label_names(session, str(SpanList(truth)), "t1") == utf16(text, truth)  # as the store holds it
    assert label_names(session, SpanList(), "t1") == []
    assert spans_to_browser(session, "not json", "t1") is None  # nothing to pre-annotate


def test_a_review_confirm_must_name_the_spans_the_item_has(browser, session, pool):
    ids = browser.hello()
    text = pool.text_of(ids[0])
    browser.press(utf16(text, truth_of(text)))
    n = len(events(session))
    reply = browser("confirm", item_id=ids[0], label=[], query="cold-start", event_id=uuid.uuid4().hex)
    assert reply["type"] == "error" and "was shown to keep the spans []" in reply["message"]
    assert len(events(session)) == n
