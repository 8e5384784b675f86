"""LabelWidget on a multi-label session in a real JupyterLab: class keys toggle classes in a
selection shown as pressed buttons, Enter saves the selection as the item's set, undo and
walking back keep working, the model's suggested set is pre-selected after a retrain, and g
only says that the grid labels one class per item."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from workbench import LabelStore

from .conftest import open_notebook
from .test_label_widget import WIDGET, focus_widget, press, shown_id, store_events, wait_saved

pytestmark = pytest.mark.browser

CLASSES = ["big", "even", "odd", "round"]
KEY = {name: str(i + 1) for i, name in enumerate(CLASSES)}  # the widget's keys: 1-4 in order

# Each digit's classes: its parity, "big" from 5 up, "round" for 0, 6, 8 and 9. A one-vs-rest
# head on the pixels trains in a fraction of a second.
SETS_CELL = '''\
from sklearn.datasets import load_digits
from workbench import Pool, Session
from workbench.learn.multilabel import MultiLabelHead

digits = load_digits()
sets = [["odd" if t % 2 else "even"] + (["big"] if t >= 5 else []) + (["round"] if t in (0, 6, 8, 9) else [])
        for t in digits.target[:300]]
pool = Pool.from_arrays(digits.images[:300], sets, task="multi_label", name="digit-sets")
session = Session(pool, store={store!r}, learner=MultiLabelHead(classes={classes!r}), audit_every=0)
widget = session.widget(charts=False)
report("{name}", truth={{i: [str(c) for c in pool.true_label(i)] for i in pool.item_ids}},
       classes=session.class_names, keys=widget.class_keys, task=widget.task)
widget
'''


def sets_notebook(server, page, name: str) -> tuple[dict, Path]:
    store = server.root / f"{name}.wbstore"
    server.clear_state(name)
    cell = SETS_CELL.format(store=str(store), name=name, classes=CLASSES)
    open_notebook(page, server, server.write_notebook(f"{name}.ipynb", [cell]))
    state = server.wait_state(name)
    assert state["classes"] == CLASSES and state["keys"] == list("1234"), state
    assert state["task"] == "multi_label", state
    focus_widget(page)
    return {i: ordered(names) for i, names in state["truth"].items()}, store


def ordered(names) -> list[str]:
    """A set's classes in class order, as the widget and the store hold them."""
    return sorted(names, key=CLASSES.index)


def pressed(page) -> list[str]:
    """The classes shown selected (pressed buttons), in class order."""
    return page.eval_on_selector_all(
        f"{WIDGET} .wb-class[aria-pressed='true'] .wb-button-label", "els => els.map(e => e.textContent)")


def enter_saves(page) -> str:
    """What the status says Enter saves: the set as the store writes it."""
    hint = page.locator(f"{WIDGET} .wb-suggestion .wb-hint").inner_text()
    found = re.search(r"Enter saves (\[[^\]]*\])", hint)
    assert found, f"no 'Enter saves' on screen: {hint!r}"
    return found.group(1)


def wait_pressed(page, names: list[str]) -> None:
    page.wait_for_function(
        """names => JSON.stringify([...document.querySelectorAll(
             ".wb-label .wb-class[aria-pressed='true'] .wb-button-label")].map(e => e.textContent))
           === JSON.stringify(names)""", arg=names)


def stored(store: Path, item_id: str) -> str | None:
    return LabelStore.open(store).current_labels()["label"].get(item_id)


def label_with_keys(page, names: list[str]) -> str:
    """Toggle `names` on (the selection starts empty here) and press Enter; returns the item."""
    item_id = shown_id(page)
    for name in names:
        page.keyboard.press(KEY[name])
    wait_pressed(page, ordered(names))
    page.keyboard.press("Enter")
    return item_id


def test_keys_toggle_classes_enter_saves_the_set_and_undo_takes_it_back(server, page, tmp_path):
    truth, store = sets_notebook(server, page, "sets_keys")
    first = shown_id(page)
    status = page.locator(f"{WIDGET} .wb-progress").inner_text()  # the role the item is shown in
    assert re.search(r"this item: cold-start, from the diverse_uncertainty queue, \d+ left", status), status
    # No model yet: nothing is selected, and Enter would save the empty set.
    assert pressed(page) == [] and enter_saves(page) == "[]"
    assert page.locator(f"{WIDGET} .wb-class[aria-pressed='false']").count() == 4
    page.keyboard.press(KEY["odd"])
    page.keyboard.press(KEY["round"])
    page.keyboard.press(KEY["big"])
    page.keyboard.press(KEY["round"])  # toggled off again
    wait_pressed(page, ["big", "odd"])
    assert enter_saves(page) == '["big", "odd"]' and shown_id(page) == first  # nothing saved yet
    page.locator(WIDGET).screenshot(path=str(tmp_path / "toggled.png"))
    assert store_events(store) == []
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('{WIDGET} .wb-item')?.dataset.itemId !== {first!r}")
    wait_saved(page)
    assert store_events(store) == [("label", first, '["big", "odd"]')]
    assert stored(store, first) == '["big", "odd"]'
    log = pd.read_parquet(store)
    assert log["source"].tolist() == ["human"] and log["query"].tolist() == ["cold-start"]
    second = shown_id(page)
    assert pressed(page) == []  # the next item starts from its own (empty) suggestion

    # z takes the label back: the item is on screen again, its selection what it has now.
    assert press(page, "z") == second
    assert shown_id(page) == first
    wait_saved(page)
    assert store_events(store)[-1] == ("undo", first, None) and stored(store, first) is None
    assert pressed(page) == []

    # The empty set is a label (no class applies); s skips.
    page.keyboard.press("Enter")
    wait_saved(page)
    assert store_events(store)[-1] == ("label", first, "[]")
    assert press(page, "s") == second
    wait_saved(page)
    assert store_events(store)[-1] == ("skip", second, None)

    # Walk back: the earlier item shows its set selected; a key changes it, Enter relabels.
    third = label_with_keys(page, truth[shown_id(page)])
    page.keyboard.press("ArrowLeft")
    assert shown_id(page) == third
    wait_pressed(page, truth[third])
    page.locator(f"{WIDGET} .wb-review", has_text=f"labeled {json.dumps(truth[third])}").wait_for()
    page.keyboard.press(KEY["round"])
    changed = ordered(set(truth[third]) ^ {"round"})
    wait_pressed(page, changed)
    page.keyboard.press("Enter")
    assert shown_id(page) not in (first, second, third)  # back on the live item
    wait_saved(page)
    assert store_events(store)[-1] == ("relabel", third, json.dumps(changed))

    # g: the grid labels one class per item; it says so, and nothing else happens.
    live = shown_id(page)
    assert page.locator(f"{WIDGET} .wb-actions .wb-button", has_text="grid").is_hidden()
    page.keyboard.press("g")
    page.locator(f"{WIDGET} .wb-error.wb-info", has_text="the grid labels one class per item").wait_for()
    assert page.locator(f"{WIDGET} .wb-grid").is_hidden() and shown_id(page) == live
    n = len(store_events(store))
    page.wait_for_timeout(200)
    assert len(store_events(store)) == n


def test_after_a_retrain_the_suggested_set_is_preselected_and_enter_saves_it(server, page, tmp_path):
    truth, store = sets_notebook(server, page, "sets_retrain")
    for _ in range(12):
        label_with_keys(page, truth[shown_id(page)])
    wait_saved(page)
    page.locator(f"{WIDGET} .wb-retrain").click()
    page.locator(f"{WIDGET} .wb-model", has_text="model round 1").wait_for(timeout=60_000)
    # The item on screen was shown before the retrain; the ones after it come from the new
    # model's queue, each with its suggested set (skip to one that suggests a class).
    suggestion = None
    for _ in range(8):
        press(page, "s")
        try:
            page.locator(f"{WIDGET} .wb-suggested-name").wait_for(timeout=5_000)
        except PlaywrightTimeout:
            continue
        suggestion = page.locator(f"{WIDGET} .wb-suggested-name").inner_text()
        if suggestion != "[]":
            break
    assert suggestion not in (None, "[]"), "no item with a suggested class after the retrain"
    item_id = shown_id(page)
    suggested = json.loads(suggestion)
    assert suggested and set(suggested) <= set(CLASSES)
    wait_pressed(page, suggested)  # pre-selected
    page.locator(WIDGET).screenshot(path=str(tmp_path / "suggested.png"))
    assert enter_saves(page) == suggestion
    assert page.locator(f"{WIDGET} .wb-class.wb-suggested").count() == len(suggested)
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.querySelector('{WIDGET} .wb-item')?.dataset.itemId !== {item_id!r}")
    wait_saved(page)
    assert store_events(store)[-1] == ("label", item_id, suggestion)
    log = pd.read_parquet(store).sort_values(["time", "writer", "seq"])
    assert log["source"].iloc[-1] == "suggestion"


REVIEW_CELL = '''\
from sklearn.datasets import load_digits
from workbench import Pool, Session
from workbench.learn.multilabel import MultiLabelHead

digits = load_digits()
sets = [["odd" if t % 2 else "even"] + (["big"] if t >= 5 else []) + (["round"] if t in (0, 6, 8, 9) else [])
        for t in digits.target[:400]]
pool = Pool.from_arrays(digits.images[:400], sets, task="multi_label", name="digit-sets")
session = Session(pool, store={store!r}, learner=MultiLabelHead(classes={classes!r}), audit_every=0)
while len(session.labels) < 100:
    for q in session.peek(20):
        session.label(q, pool.true_label(q.item_id))
    session.retrain()
planted = sorted(session.labels)[:3]
for item_id in planted:  # parity given the wrong way round
    truth = pool.true_label(item_id)
    session.label(item_id, [{{"odd": "even", "even": "odd"}}.get(c, c) for c in truth])
table = session.review(3)
widget = session.widget(charts=False)
report("{name}", review=list(table["item_id"]),
       given={{i: [str(c) for c in session.label_of(i)] for i in table["item_id"]}})
widget
'''


def test_a_review_of_sets_shows_the_label_kept_enter_confirms_a_key_relabels(server, page, tmp_path):
    """review() on a multi-label session in the browser: each review item starts with the set
    it has selected; Enter keeps it (a confirm event carrying that set), a toggled class then
    Enter relabels it."""
    name = "sets_review"
    store = server.root / f"{name}.wbstore"
    server.clear_state(name)
    cell = REVIEW_CELL.format(store=str(store), name=name, classes=CLASSES)
    open_notebook(page, server, server.write_notebook(f"{name}.ipynb", [cell]))
    state = server.wait_state(name, timeout=120)  # 100 labels and 5 rounds first
    assert len(state["review"]) >= 2, state
    focus_widget(page)
    first = shown_id(page)
    assert first == state["review"][0]
    wait_pressed(page, ordered(state["given"][first]))  # the set under review, not the suggestion
    page.locator(f"{WIDGET} .wb-review", has_text="Review").wait_for()
    page.locator(WIDGET).screenshot(path=str(tmp_path / "review.png"))
    n = len(store_events(store))
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('{WIDGET} .wb-item')?.dataset.itemId !== {first!r}")
    wait_saved(page)
    assert store_events(store)[n:] == [("confirm", first, json.dumps(ordered(state["given"][first])))]
    second = shown_id(page)
    assert second == state["review"][1]
    wait_pressed(page, ordered(state["given"][second]))
    for cls in ("odd", "even"):  # put the parity right
        page.keyboard.press(KEY[cls])
    fixed = ordered(set(state["given"][second]) ^ {"odd", "even"})
    wait_pressed(page, fixed)
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.querySelector('{WIDGET} .wb-item')?.dataset.itemId !== {second!r}")
    wait_saved(page)
    assert store_events(store)[-1] == ("relabel", second, json.dumps(fixed))
    log = pd.read_parquet(store).sort_values(["time", "writer", "seq"])
    assert log["query"].iloc[-1] == "review" and log["source"].iloc[-1] == "human"
