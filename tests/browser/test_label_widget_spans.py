"""LabelWidget on a spans session in a real JupyterLab: the text is drawn as text with its spans
marked; a mouse drag or the keyboard selects whole words, a class key marks them, a click
chooses a span to relabel or delete, Enter saves the spans and the store holds code-point
offsets even after an emoji (two UTF-16 units in the browser); undo and walking back keep
working; after a retrain the model's spans are pre-annotated and Enter accepts them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from .conftest import open_notebook
from .test_label_widget import WIDGET, shown_id, store_events, wait_saved

pytestmark = pytest.mark.browser

LABELS = ["LOC", "ORG", "PER"]
KEY = {name: str(i + 1) for i, name in enumerate(LABELS)}  # the widget's keys: 1-3 in order
TEXT = f"{WIDGET} .wb-spans-text"

# Every text has an emoji (one code point, two UTF-16 units) before its names.
EMOJI_CELL = '''\
from workbench import Pool, Session

texts = ["Party 🎉 with Alice Moreau in Paris.", "🎉🎉 Bob Okafor joined Acme Corp in Lagos.",
         "Fans 🎉 cheered as Carla Mendes arrived in Oslo.", "In Porto 🎉 Dmitri Volkov met Globex."]
pool = Pool.from_texts(texts, task="spans", classes={labels!r}, name="emoji-spans",
                       item_ids=[f"t{{i}}" for i in range(len(texts))])
session = Session(pool, store={store!r}, audit_every=0)
widget = session.widget(charts=False)
report("{name}", texts=dict(zip(pool.item_ids, texts)), keys=widget.class_keys, task=widget.task)
widget
'''

# Entities with a model: 15 texts labeled from code, one round trained before the widget shows.
MODEL_CELL = '''\
from workbench import Session
from workbench.data.entity_texts import entities

pool, test = entities(80, n_test=20)
session = Session(pool, store={store!r}, test=test, audit_every=0)
for item_id in pool.item_ids[:15]:
    session.label(item_id, pool.true_label(item_id))
session.retrain()
widget = session.widget(charts=False)
report("{name}", texts={{i: pool.text_of(i) for i in pool.item_ids}},
       suggestions={{q.item_id: str(q.suggestion) for q in session.peek(8)}})
widget
'''


PEOPLE = ("Alice Moreau", "Bob Okafor", "Carla Mendes", "Dmitri Volkov")
PLACES = ("Paris", "Lagos", "Oslo", "Porto")


def token_at(text: str, offset: int) -> int:
    """The index of the token that starts at `offset` (workbench.data.spans.tokens' rule)."""
    return [m.start() for m in re.finditer(r"\w+|[^\w\s]", text)].index(offset)


def spans_notebook(server, page, name: str, cell: str) -> tuple[dict, Path]:
    store = server.root / f"{name}.wbstore"
    server.clear_state(name)
    source = cell.format(store=str(store), name=name, labels=LABELS)
    open_notebook(page, server, server.write_notebook(f"{name}.ipynb", [source]))
    state = server.wait_state(name, timeout=60)
    page.locator(f"{WIDGET} .wb-item-id").click()  # focus, without a click in the text
    page.wait_for_function("() => document.activeElement?.closest('.wb-label') !== null")
    return state, store


def marked(page) -> list[list[str]]:
    """The spans on screen: [text, label] each, in text order."""
    return page.eval_on_selector_all(f"{TEXT} mark.wb-span",
                                     "els => els.map(e => [e.textContent, e.dataset.label])")


def wait_marked(page, spans: list[list[str]]) -> None:
    page.wait_for_function(
        """spans => JSON.stringify([...document.querySelectorAll(".wb-label .wb-spans-text mark.wb-span")]
             .map(e => [e.textContent, e.dataset.label])) === JSON.stringify(spans)""", arg=spans)


def word(page, text: str):
    return page.locator(f"{TEXT} .wb-tok", has_text=re.compile(f"^{re.escape(text)}$")).first


def drag(page, start: str, end: str) -> None:
    """Press the mouse in the middle of word `start` and let go a little into word `end`."""
    word(page, start).scroll_into_view_if_needed()
    a, b = word(page, start).bounding_box(), word(page, end).bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 3, b["y"] + b["height"] / 2, steps=5)
    page.mouse.up()


def selected(page) -> list[str]:
    return page.eval_on_selector_all(f"{TEXT} .wb-tok-selected", "els => els.map(e => e.textContent)")


def hint(page) -> str:
    return page.locator(f"{WIDGET} .wb-suggestion .wb-hint").first.inner_text()


def wait_hint(page, text: str) -> None:
    page.locator(f"{WIDGET} .wb-suggestion .wb-hint", has_text=text).first.wait_for()


def code_points(text: str, *spans: tuple[str, str]) -> str:
    """The store's label for `(words, label)` spans of `text`: offsets in code points."""
    out = sorted((text.index(w), text.index(w) + len(w), lab) for w, lab in spans)
    return json.dumps({"v": 1, "spans": [list(s) for s in out]}, ensure_ascii=False)


def wait_shown(page, item_id: str, *, shown: bool = True) -> None:
    """Wait until item `item_id` is on screen (`shown=False`: until another one is)."""
    page.wait_for_function(
        "([sel, id, shown]) => (document.querySelector(sel)?.dataset.itemId === id) === shown",
        arg=[f"{WIDGET} .wb-item", item_id, shown])


def wait_shown_other_than(page, item_id: str) -> None:
    wait_shown(page, item_id, shown=False)


def test_mark_relabel_delete_save_undo_and_walk_back_store_code_points(server, page, tmp_path):
    state, store = spans_notebook(server, page, "spans_keys", EMOJI_CELL)
    assert state["task"] == "spans" and state["keys"] == ["1", "2", "3"], state
    texts = state["texts"]
    first = shown_id(page)
    text = texts[first]
    # The text as text, exactly (the labels are CSS tags, not text); nothing marked yet.
    assert page.locator(TEXT).text_content() == text
    assert marked(page) == [] and "Enter saves no spans" in hint(page)

    person = next(n for n in PEOPLE if n in text)
    place = next(n for n in PLACES if n in text)
    other = next(n for n in ("with", "joined", "cheered", "met") if n in text.split())
    first_word, last_word = person.split()
    # A drag from the middle of one word into the next selects both, whole; 3 marks them PER.
    drag(page, first_word, last_word)
    assert selected(page) == [first_word, last_word]
    page.locator(f"{WIDGET} .wb-spans-state", has_text=f'selected "{person}"').wait_for()
    page.keyboard.press(KEY["PER"])
    wait_marked(page, [[person, "PER"]])
    # The keyboard: the caret (on the span's last word) moves a word at a time; 1 marks the
    # word it is on as LOC.
    steps = token_at(text, text.index(place)) - token_at(text, text.index(last_word, text.index(person)))
    for _ in range(abs(steps)):
        page.keyboard.press("ArrowRight" if steps > 0 else "ArrowLeft")
    page.locator(f"{WIDGET} .wb-spans-state", has_text=f'caret on "{place}"').wait_for()
    page.keyboard.press(KEY["LOC"])
    wait_marked(page, sorted([[person, "PER"], [place, "LOC"]], key=lambda s: text.index(s[0])))
    # Shift+← extends a selection over a span: refused, this pool's spans may not overlap.
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press(KEY["ORG"])
    page.locator(f"{WIDGET} .wb-error.wb-info", has_text="refused").wait_for()
    assert "may not overlap" in page.locator(f"{WIDGET} .wb-error").inner_text()
    page.keyboard.press("Escape")
    # A click chooses a span: 2 relabels it ORG.
    page.locator(f"{TEXT} mark.wb-span", has_text=place).click()
    page.locator(f"{TEXT} mark.wb-span-chosen", has_text=place).wait_for()
    page.keyboard.press(KEY["ORG"])
    wait_marked(page, sorted([[person, "PER"], [place, "ORG"]], key=lambda s: text.index(s[0])))
    # A word clicked and marked, then deleted again (Del on the span chosen).
    word(page, other).click()
    page.keyboard.press(KEY["LOC"])
    page.locator(f"{TEXT} mark.wb-span", has_text=other).wait_for()
    page.keyboard.press("Delete")
    wait_marked(page, sorted([[person, "PER"], [place, "ORG"]], key=lambda s: text.index(s[0])))
    saves = "Enter saves 2 spans: " + ", ".join(lab for _, lab in sorted(
        [(person, "PER"), (place, "ORG")], key=lambda s: text.index(s[0])))
    assert saves in hint(page)
    page.locator(WIDGET).screenshot(path=str(tmp_path / "spans.png"))
    assert store_events(store) == []  # nothing saved before Enter

    page.keyboard.press("Enter")
    wait_shown_other_than(page, first)
    wait_saved(page)
    expected = code_points(text, (person, "PER"), (place, "ORG"))
    assert store_events(store) == [("label", first, expected)]
    assert expected != json.dumps({"v": 1, "spans": []})
    second = shown_id(page)

    # z takes it back: the item is on screen again, unlabeled, nothing marked.
    page.keyboard.press("z")
    wait_shown(page, first)
    wait_saved(page)
    assert store_events(store)[-1] == ("undo", first, None)
    wait_marked(page, [])
    # Enter with nothing marked saves that (nothing to mark).
    assert "Enter saves no spans (nothing to mark)" in hint(page)
    page.keyboard.press("Enter")
    wait_shown_other_than(page, first)
    wait_saved(page)
    assert store_events(store)[-1] == ("label", first, '{"v": 1, "spans": []}')

    # The next text: a name after one or two emoji, marked and saved.
    assert shown_id(page) == second
    text2 = texts[second]
    person2 = next(n for n in PEOPLE if n in text2)
    drag(page, *person2.split())
    page.keyboard.press(KEY["PER"])
    wait_marked(page, [[person2, "PER"]])
    page.keyboard.press("Enter")
    wait_shown_other_than(page, second)
    wait_saved(page)
    assert store_events(store)[-1] == ("label", second, code_points(text2, (person2, "PER")))
    live = shown_id(page)

    # ↑ walks back: the earlier text with its saved span, editable; Enter relabels it.
    page.keyboard.press("ArrowUp")
    wait_shown(page, second)
    page.locator(f"{WIDGET} .wb-review", has_text="labeled 1 span: PER").wait_for()
    wait_marked(page, [[person2, "PER"]])
    page.locator(f"{TEXT} mark.wb-span", has_text=person2).click()
    page.keyboard.press(KEY["ORG"])  # not a person after all
    wait_marked(page, [[person2, "ORG"]])
    wait_hint(page, "Enter saves 1 span: ORG")
    page.keyboard.press("Enter")
    wait_shown(page, live)
    wait_saved(page)
    assert store_events(store)[-1] == ("relabel", second, code_points(text2, (person2, "ORG")))
    assert [e[0] for e in store_events(store)] == ["label", "undo", "label", "label", "relabel"]


def test_the_models_spans_are_preannotated_and_enter_accepts_them(server, page):
    state, store = spans_notebook(server, page, "spans_model", MODEL_CELL)
    texts, suggestions = state["texts"], state["suggestions"]
    item_id = shown_id(page)
    assert item_id in suggestions, (item_id, list(suggestions))
    text = texts[item_id]
    spans = json.loads(suggestions[item_id])["spans"]
    assert spans, f"the model marks nothing in {text!r}"
    # Pre-annotated: each span of the model's over exactly its words (code points in Python).
    wait_marked(page, [[text[s:e], lab] for s, e, lab in spans])
    assert page.locator(TEXT).text_content() == text
    page.locator(f"{WIDGET} .wb-suggestion", has_text=f"model suggests {len(spans)} span").wait_for()
    wait_hint(page, f"Enter saves {len(spans)} span")
    page.keyboard.press("Enter")
    wait_shown_other_than(page, item_id)
    wait_saved(page)
    assert store_events(store)[-1] == ("label", item_id, suggestions[item_id])
    log = pd.read_parquet(store).sort_values(["time", "writer", "seq"])
    assert log["source"].iloc[-1] == "suggestion"

    # The next one the model marks something in (s skips the others): a pre-annotated span
    # relabeled, the rest kept; saved as a person's label.
    for _ in range(6):
        nxt = shown_id(page)
        spans = json.loads(suggestions[nxt])["spans"] if nxt in suggestions else []
        if spans:
            break
        page.keyboard.press("s")
        wait_shown_other_than(page, nxt)
    assert spans, "no item the model marks anything in"
    text = texts[nxt]
    s, e, lab = spans[0]
    other = next(x for x in LABELS if x != lab)
    wait_marked(page, [[text[a:b], la] for a, b, la in spans])
    page.locator(f"{TEXT} mark.wb-span").first.click()
    page.keyboard.press(KEY[other])
    changed = sorted([[s, e, other]] + [list(x) for x in spans[1:]],
                     key=lambda x: (x[0], x[1], LABELS.index(x[2])))
    wait_marked(page, [[text[a:b], la] for a, b, la in changed])
    page.keyboard.press("Enter")
    wait_shown_other_than(page, nxt)
    wait_saved(page)
    assert store_events(store)[-1] == ("label", nxt, json.dumps({"v": 1, "spans": changed}))
    log = pd.read_parquet(store).sort_values(["time", "writer", "seq"])
    assert log["source"].iloc[-1] == "human"


NESTED_CELL = '''\
from workbench import Pool, Session

texts = ["The Bank of Paris 🎉 opened.", "The Bank of Oslo 🎉 closed."]
pool = Pool.from_texts(texts, task="spans", classes={labels!r}, name="nested", overlapping=True,
                       item_ids=["n0", "n1"])
session = Session(pool, store={store!r}, audit_every=0)
widget = session.widget(charts=False)
report("{name}", texts=dict(zip(pool.item_ids, texts)), overlapping=widget.overlapping)
widget
'''


def test_a_pool_that_allows_overlaps_takes_a_span_inside_another(server, page):
    state, store = spans_notebook(server, page, "spans_nested", NESTED_CELL)
    assert state["overlapping"] is True
    item_id = shown_id(page)
    text = state["texts"][item_id]
    bank = "Bank of Paris" if "Paris" in text else "Bank of Oslo"
    city = bank.split()[-1]
    drag(page, "Bank", city)
    page.keyboard.press(KEY["ORG"])
    wait_marked(page, [[bank, "ORG"]])
    # The caret is on the city; Shift+← then Shift+→ selects it alone, inside the bank.
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Shift+ArrowRight")
    assert selected(page) == [city]
    page.keyboard.press(KEY["LOC"])
    wait_marked(page, [[bank, "ORG"], [city, "LOC"]])  # nested: the city's mark inside the bank's
    assert page.locator(f"{TEXT} mark.wb-span mark.wb-span").text_content() == city
    assert page.locator(TEXT).text_content() == text
    wait_hint(page, "Enter saves 2 spans: ORG, LOC")
    page.keyboard.press("Enter")
    wait_shown_other_than(page, item_id)
    wait_saved(page)
    assert store_events(store) == [("label", item_id, code_points(text, (bank, "ORG"), (city, "LOC")))]


# A review: 30 texts labeled from code, one with every label wrong, the two most suspicious in
# front of the queue (workbench/loop/review_parts.py).
REVIEW_CELL = '''\
from workbench import Session
from workbench.data.entity_texts import entities
from workbench.data.spans import Span, SpanList

pool, test = entities(40, n_test=10)
session = Session(pool, store={store!r}, test=test, audit_every=0)
session.label_many({{i: pool.true_label(i) for i in pool.item_ids[:30]}})
swap = {{"LOC": "ORG", "ORG": "PER", "PER": "LOC"}}
first = pool.item_ids[0]
session.label(first, SpanList(Span(s.start, s.end, swap[s.label]) for s in pool.true_label(first)))
review = session.review(2)
widget = session.widget(charts=False)
report("{name}", texts={{i: pool.text_of(i) for i in pool.item_ids}},
       review=review["item_id"].tolist(), labels={{i: str(session.label_of(i)) for i in review["item_id"]}})
widget
'''


def test_a_review_shows_the_texts_own_spans_enter_confirms_a_fix_relabels(server, page):
    state, store = spans_notebook(server, page, "spans_review", REVIEW_CELL)
    texts, review, labels = state["texts"], state["review"], state["labels"]
    assert len(review) == 2
    for n, item_id in enumerate(review):
        assert shown_id(page) == item_id
        text, spans = texts[item_id], json.loads(labels[item_id])["spans"]
        wait_marked(page, [[text[s:e], lab] for s, e, lab in spans])  # its own spans, not the model's
        page.locator(f"{WIDGET} .wb-suggestion", has_text="held-out models suggest").wait_for()
        if n == 0:  # Enter keeps them: a confirm that carries them
            page.keyboard.press("Enter")
            expected = ("confirm", item_id, labels[item_id])
        else:  # the first span relabeled, then Enter: a relabel
            s, e, lab = spans[0]
            other = next(x for x in LABELS if x != lab)
            page.locator(f"{TEXT} mark.wb-span").first.click()
            page.keyboard.press(KEY[other])
            changed = [[s, e, other]] + spans[1:]
            wait_marked(page, [[text[a:b], la] for a, b, la in changed])
            page.keyboard.press("Enter")
            expected = ("relabel", item_id, json.dumps({"v": 1, "spans": changed}))
        wait_shown_other_than(page, item_id)
        wait_saved(page)
        assert store_events(store)[-1] == expected
        log = pd.read_parquet(store).sort_values(["time", "writer", "seq"])
        assert log["query"].iloc[-1] == "review"
