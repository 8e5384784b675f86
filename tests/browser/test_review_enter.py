"""Issue 17 item 10: on a review item, what Enter does is what the screen says it does, on
every path: first view, walked back with the arrow keys, and after an undo.

Each test reads the Enter hint off the screen, presses Enter, and checks the label that the
store holds for the item (a second handle on it, as another notebook would see it)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore

from .conftest import open_notebook
from .test_label_widget import WIDGET, focus_widget, press, shown_id, wait_saved

pytestmark = pytest.mark.browser

# Labels with three planted errors, and the review open before the widget shows: the
# suspects come first, each with the label it has and the class the held-out models suggest.
REVIEW_CELL = '''\
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from workbench import Pool, Session

digits = load_digits()
pool = Pool.from_arrays(digits.images[:400], digits.target[:400], name="digits")
session = Session(pool, store={store!r}, learner=LogisticRegression(max_iter=300), audit_every=0)
truth = {{i: int(pool.true_label(i)) for i in pool.item_ids}}
flipped = list(pool.item_ids[[3, 50, 99]])
session.label_many({{i: (t + 1) % 10 if i in flipped else t for i, t in truth.items()}})
table = session.review(3)
report("{name}", suspects=list(table["item_id"]),
       given={{i: str(session.label_of(i)) for i in table["item_id"]}},
       suggested=dict(zip(table["item_id"], table["suggested"].astype(str))))
session.widget(charts=False)
'''


def review_notebook(server, page, name: str) -> tuple[dict, Path]:
    store = server.root / f"{name}.wbstore"
    server.clear_state(name)
    path = server.write_notebook(f"{name}.ipynb", [REVIEW_CELL.format(store=str(store), name=name)])
    open_notebook(page, server, path)
    state = server.wait_state(name)
    assert len(state["suspects"]) == 3, state
    assert all(state["given"][i] != state["suggested"][i] for i in state["suspects"]), state
    page.locator(f"{WIDGET} .wb-item[data-item-id='{state['suspects'][0]}']").wait_for()
    focus_widget(page)
    return state, store


def enter_hint(page) -> tuple[str, str]:
    """What the screen says Enter does now: ("keeps", label) or ("accepts", suggestion)."""
    text = page.locator(f"{WIDGET} .wb-suggestion").inner_text()
    kept = re.search(r"Enter keeps (\S+)", text)
    if kept:
        return "keeps", kept.group(1)
    suggested = re.search(r"suggest\S* (\S+)", text)
    assert suggested and "Enter accepts" in text, f"no Enter hint on screen: {text!r}"
    return "accepts", suggested.group(1)


def accept_button(page) -> str:
    return page.locator(f"{WIDGET} .wb-actions .wb-button-label").nth(4).inner_text()


def stored_label(store: Path, item_id: str) -> str | None:
    labels = LabelStore.open(store).current_labels()
    return labels["label"].get(item_id)


def last_events(store: Path, n: int) -> list[list]:
    log = pd.read_parquet(store).sort_values(["time", "writer", "seq"])
    return log.iloc[-n:][["action", "item_id", "label"]].values.tolist()


def press_enter_as_hinted(page, store: Path, item_id: str, expected: tuple[str, str]) -> None:
    """Read the hint on `item_id`, check it, press Enter, and check the store holds what the
    hint said."""
    assert shown_id(page) == item_id
    hint = enter_hint(page)
    assert hint == expected, f"on {item_id} the screen says Enter {hint}, expected {expected}"
    button = accept_button(page)
    page.keyboard.press("Enter")
    wait_saved(page)
    assert stored_label(store, item_id) == hint[1], (
        f"the screen said Enter {hint[0]} {hint[1]} on {item_id}; the store holds "
        f"{stored_label(store, item_id)!r}; last events {last_events(store, 3)}")
    assert button == ("keep" if hint[0] == "keeps" else "accept"), (
        f"the hint says Enter {hint[0]} {hint[1]}, the Enter button says {button!r}")


def test_enter_on_a_review_item_walked_back_to_keeps_what_the_screen_says(server, page, tmp_path):
    """Kept with Enter, then walked back to with ←: the screen says Enter keeps the label,
    and Enter keeps it (it used to relabel the item to the held-out models' suggestion)."""
    state, store = review_notebook(server, page, "enter_walk")
    first, second, third = state["suspects"]
    given = state["given"]
    press_enter_as_hinted(page, store, first, ("keeps", given[first]))  # first view
    assert last_events(store, 1) == [["confirm", first, given[first]]]
    assert press(page, "s") == second  # left for later: nothing written
    assert shown_id(page) == third

    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert shown_id(page) == first
    page.locator(f"{WIDGET} .wb-review", has_text="Earlier item 2 back").wait_for()
    page.locator(WIDGET).screenshot(path=str(tmp_path / "walked-back.png"))
    n = len(pd.read_parquet(store))
    press_enter_as_hinted(page, store, first, ("keeps", given[first]))
    assert len(pd.read_parquet(store)) == n  # kept already: nothing more to write
    # Enter moved on, as a class key does when walked back: to the item left for later,
    # which Enter now keeps with a confirm event (the person decided after all).
    press_enter_as_hinted(page, store, second, ("keeps", given[second]))
    assert last_events(store, 1) == [["confirm", second, given[second]]]
    assert shown_id(page) == third  # back on the live item


def test_enter_after_an_undo_keeps_what_the_screen_says(server, page, tmp_path):
    """Kept, undone (the item comes back), kept again; relabeled while walked back, then
    that relabel undone: each time the hint names the label Enter keeps, and it does."""
    state, store = review_notebook(server, page, "enter_undo")
    first, second, _ = state["suspects"]
    given, suggested = state["given"], state["suggested"]
    press_enter_as_hinted(page, store, first, ("keeps", given[first]))
    assert press(page, "z") == second
    assert shown_id(page) == first  # the undone keep brings the item back on screen
    wait_saved(page)
    press_enter_as_hinted(page, store, first, ("keeps", given[first]))

    other = next(str(k) for k in range(10) if str(k) not in (given[first], suggested[first]))
    page.keyboard.press("ArrowLeft")
    assert shown_id(page) == first
    page.keyboard.press(other)  # relabel it while walked back; back to the live item
    wait_saved(page)
    assert stored_label(store, first) == other
    page.keyboard.press("ArrowLeft")
    press_enter_as_hinted(page, store, first, ("keeps", other))

    page.keyboard.press("z")  # takes back the relabel: the item has its reviewed label again
    wait_saved(page)
    assert stored_label(store, first) == given[first]
    page.keyboard.press("ArrowLeft")
    page.locator(f"{WIDGET} .wb-review", has_text=f"labeled {given[first]}").wait_for()
    page.locator(WIDGET).screenshot(path=str(tmp_path / "after-undo.png"))
    press_enter_as_hinted(page, store, first, ("keeps", given[first]))
