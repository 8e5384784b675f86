"""LabelWidget on a boxes session, without a browser: an image goes out with its size in pixels
(what the browser's SVG counts in), a label is a list of `[x, y, w, h, label]` in image pixels
both ways ([] says the image holds no object) and is stored exactly as given; a bad list from
the browser is an error that says what was wrong and writes nothing. `Browser`
(tests/ui/test_label_widget.py) stands in for the front end; the real one is tested in
tests/browser/test_label_widget_boxes.py."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import traitlets
from test_label_widget import Browser, events

from workbench import Pool, Session
from workbench.data.boxes import Box, BoxList
from workbench.ui.box_payload import box_fields, boxes_from_browser, boxes_to_browser
from workbench.ui.label_payload import label_names, label_now, returned_payload
from workbench.ui.label_widget import LabelWidget

CLASSES = ["cat", "dog"]
W, H = 48, 32  # not square: a width and a height swapped would show


def truth(i: int) -> list[tuple]:
    return [(2 + i, 3, 10, 8, "cat"), (20, 12 + i, 15, 9, "dog")] if i % 2 == 0 else [(5, 5, 6, 6, "dog")]


@pytest.fixture
def pool():
    images = np.random.default_rng(0).random((4, H, W)).astype(np.float32)
    return Pool.from_arrays(images, y=[truth(i) for i in range(4)], task="boxes", classes=CLASSES,
                            name="boxes")


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


def BoxList_(boxes=()) -> BoxList:  # noqa: N802 - reads like the class
    """A BoxList of (x, y, w, h, label) tuples in the store's order, as the session gives it."""
    order = {c: i for i, c in enumerate(CLASSES)}
    return BoxList(sorted((Box(*b) for b in boxes), key=lambda b: (b.y, b.x, b.h, b.w, order[b.label])))


def test_the_widget_knows_the_task_and_offers_no_grid(browser, session):
    widget = browser.widget
    assert session.task == "boxes" and widget.task == "boxes" and widget.pool_kind == "image"
    assert widget.class_names == CLASSES and widget.class_keys == ["1", "2"]
    with pytest.raises(traitlets.TraitError, match="the grid labels one class per item"):
        widget.mode = "grid"
    assert widget.mode == "single"


def test_an_item_goes_out_with_its_image_and_its_size_in_pixels(browser, session):
    browser.hello()
    for item in browser.of_type("reset")[-1]["items"]:
        assert item["render"]["kind"] == "image" and item["render"]["mime"] == "image/png"
        assert (item["width"], item["height"]) == (W, H)
        assert (item["render"]["width"], item["render"]["height"]) == (W, H)
        assert item["suggestion"] is None and item["given"] is None  # no model, no label yet
        json.dumps(item)  # all of it goes over the wire as it is
    assert box_fields(session, session.pool.item_ids[0]) == {"width": W, "height": H}


def test_boxes_from_the_browser_are_stored_exactly(browser, session):
    ids = browser.hello()
    item = browser.current
    # In any order; a float keeps its 2 decimals, whole numbers stay whole.
    sent = [[20, 12, 15.25, 9, "dog"], [2, 3, 10, 8, "cat"]]
    reply = browser.press(sent)
    assert reply["type"] == "ack" and reply["action"] == "label"
    stored = events(session)
    assert len(stored) == 1 and stored[0][:2] == ("label", ids[0])
    assert json.loads(stored[0][2]) == {"v": 1, "boxes": [[2, 3, 10, 8, "cat"], [20, 12, 15.25, 9, "dog"]]}
    assert stored[0][2] == '{"v": 1, "boxes": [[2, 3, 10, 8, "cat"], [20, 12, 15.25, 9, "dog"]]}'
    assert session.label_of(ids[0]) == BoxList_([(2, 3, 10, 8, "cat"), (20, 12, 15.25, 9, "dog")])
    assert session.store.events().iloc[0]["query"] == item["strategy"]
    # What the browser gets back about it (undo brings it back, a review shows it): the same.
    back = [[2, 3, 10, 8, "cat"], [20, 12, 15.25, 9, "dog"]]
    assert label_now(session, ids[0]) == back
    assert returned_payload(session, ids[0], reason="brought back by undo")["given"] == back


def test_a_box_to_the_image_edge_is_inside_it(browser, session):
    ids = browser.hello()
    assert browser.press([[0, 0, W, H, "dog"]])["type"] == "ack"
    assert events(session) == [("label", ids[0], '{"v": 1, "boxes": [[0, 0, 48, 32, "dog"]]}')]


def test_an_empty_list_is_a_label_no_object(browser, session):
    ids = browser.hello()
    assert browser.press([])["type"] == "ack"
    assert events(session) == [("label", ids[0], '{"v": 1, "boxes": []}')]
    assert session.label_of(ids[0]) == BoxList() and session.is_done(ids[0])


@pytest.mark.parametrize(("value", "says"), [
    ("cat", "a boxes label is a list of [x, y, w, h, label] boxes"),
    ({"boxes": []}, "a boxes label is a list of [x, y, w, h, label] boxes"),
    ('{"v": 1, "boxes": []}', "a boxes label is a list of [x, y, w, h, label] boxes"),
    ([[0, 0, 5, 5]], "a box from the browser is [x, y, w, h, label]"),
    ([[0, 0, 5, 5, "cat"], "x"], "a box from the browser is [x, y, w, h, label]"),
    ([{"x": 0, "y": 0, "w": 5, "h": 5, "label": "cat"}], "a box from the browser is [x, y, w, h, label]"),
    ([[0, 0, "5", 5, "cat"]], "w '5' is not a number of pixels of its 48x32 image"),
    ([[0, True, 5, 5, "cat"]], "y True is not a number of pixels"),
    ([[float("nan"), 0, 5, 5, "cat"]], "x nan is not a number of pixels"),
    ([[0, 0, float("inf"), 5, "cat"]], "w inf is not a number of pixels"),
    ([[0, 0, 5, 5, 1]], "its label 1 is not a class name"),
    ([[0, 0, 5, 5, "zebra"]], "which is not among the classes"),
    ([[-1, 0, 5, 5, "cat"]], "reaches outside the image (48x32 pixels)"),
    ([[40, 0, 9, 5, "cat"]], "reaches outside the image (48x32 pixels)"),
    ([[0, 30, 5, 3, "cat"]], "reaches outside the image (48x32 pixels)"),
    ([[0, 0, 0, 5, "cat"]], "a box's width and height are more than 0 pixels"),
    ([[0, 0, 5, -2, "cat"]], "a box's width and height are more than 0 pixels"),
    ([[0, 0, 5, 5, "cat"], [0, 0, 5, 5, "cat"]], "is given twice"),
])
def test_a_bad_list_is_an_error_and_stores_nothing(browser, session, value, says):
    ids = browser.hello()
    held = browser.holding()
    reply = browser("label", item_id=ids[0], label=value, query="cold-start", event_id=uuid.uuid4().hex)
    assert reply["type"] == "error" and reply["action"] == "label" and reply["item_id"] == ids[0]
    assert says in reply["message"] and says in browser.widget.error
    assert repr(ids[0]) in reply["message"]  # which image
    assert events(session) == [] and not session.is_done(ids[0])
    assert browser.holding() == held  # nothing was prefetched in its place
    browser("label", item_id=ids[0], label=[], query="cold-start")  # a good one clears it
    assert browser.widget.error == "" and len(events(session)) == 1


def test_the_same_box_with_two_classes_is_two_boxes(session):
    item_id = session.pool.item_ids[0]
    boxes = boxes_from_browser(session, [[1, 1, 4, 4, "dog"], [1, 1, 4, 4, "cat"]], item_id)
    assert boxes == BoxList_([(1, 1, 4, 4, "cat"), (1, 1, 4, 4, "dog")])


def test_boxes_to_browser_reads_every_form_of_a_label(session):
    item_id = session.pool.item_ids[0]
    boxes = BoxList_([(2, 3, 10.5, 8, "cat")])
    assert boxes_to_browser(session, boxes, item_id) == [[2, 3, 10.5, 8, "cat"]]
    assert boxes_to_browser(session, str(boxes), item_id) == [[2, 3, 10.5, 8, "cat"]]  # the store's JSON
    assert boxes_to_browser(session, '[[2, 3, 10.5, 8, "cat"]]', item_id) == [[2, 3, 10.5, 8, "cat"]]
    numpy = [(np.int64(2), np.float32(3.0), 10, 8, "cat")]
    assert boxes_to_browser(session, numpy, item_id) == [[2, 3.0, 10, 8, "cat"]]
    assert boxes_to_browser(session, BoxList(), item_id) == []
    assert boxes_to_browser(session, None, item_id) is None
    assert boxes_to_browser(session, "not json", item_id) is None  # nothing to pre-annotate
    assert boxes_to_browser(session, [[0, 0, 99, 5, "cat"]], item_id) is None  # not of this image
    out = boxes_to_browser(session, [(np.int64(2), np.float64(3.5), np.int32(4), 8, "dog")], item_id)
    assert [type(v) for v in out[0]] == [int, float, int, int, str]  # Python numbers: JSON takes them
    assert label_names(session, boxes, item_id) == [[2, 3, 10.5, 8, "cat"]]


def test_the_public_label_method_takes_boxes_in_pixels(browser, session):
    head = session.next().item_id
    event = browser.widget.label([(4, 4, 8, 8, "dog")], head)
    assert session.label_of(head) == BoxList_([(4, 4, 8, 8, "dog")])
    assert event.label == '{"v": 1, "boxes": [[4, 4, 8, 8, "dog"]]}'


def test_undo_and_relabel_of_an_earlier_item(browser, session):
    ids = browser.hello()
    first = browser.current["item_id"]
    browser.press([[2, 3, 10, 8, "cat"]])
    browser.press([])
    # Undo takes back exactly the last label; the image comes back unlabeled, with its size.
    reply = browser.undo()
    assert reply["type"] == "ack" and [p["item_id"] for p in reply["undone"]] == [ids[1]]
    back = reply["undone"][0]
    assert back["given"] is None and (back["width"], back["height"]) == (W, H)
    assert session.label_of(ids[1]) is None
    # Walked back: the earlier image's box moved and relabeled, one added.
    changed = [[3, 3, 10, 8, "dog"], [30, 20, 5, 5, "cat"]]
    reply = browser("label", item_id=first, label=changed, source="human", query="cold-start",
                    event_id=uuid.uuid4().hex)
    assert reply["type"] == "ack"
    assert [e[0] for e in events(session)] == ["label", "label", "undo", "relabel"]
    assert session.label_of(first) == BoxList_([tuple(b) for b in changed])


def test_a_review_confirm_must_name_the_boxes_the_item_has(browser, session):
    ids = browser.hello()
    browser.press([[2, 3, 10, 8, "cat"]])
    n = len(events(session))
    reply = browser("confirm", item_id=ids[0], label=[], query="cold-start", event_id=uuid.uuid4().hex)
    assert reply["type"] == "error" and "was shown to keep the boxes []" in reply["message"]
    assert len(events(session)) == n


def test_the_models_boxes_go_to_the_browser_and_enter_accepts_them(tmp_path):
    from workbench.data.box_digits import box_digits

    pool, test = box_digits(60, n_test=20)
    s = Session(pool, tmp_path / "labels.wbstore", test=test, watch=False)
    try:
        for item_id in pool.item_ids[:40]:  # on fewer the detector is seldom sure of a box
            s.label(item_id, pool.true_label(item_id))
        s.retrain()
        as_browser = {i: label_names(s, s.suggest(i)[0], i) for i in pool.item_ids[40:]}
        assert sum(bool(boxes) for boxes in as_browser.values()) >= 2, as_browser
        for item_id, boxes in as_browser.items():
            suggestion = s.suggest(item_id)[0]
            assert boxes == [[b.x, b.y, b.w, b.h, b.label] for b in suggestion]
            json.dumps(boxes)
        widget = LabelWidget(s, buffer_size=4, charts=False)
        browser = Browser(widget)
        browser.hello()
        items = browser.of_type("reset")[-1]["items"]
        assert items
        width, height = pool.X.shape[2], pool.X.shape[1]
        for item in items:
            suggestion, confidence = s.suggest(item["item_id"])
            assert isinstance(suggestion, BoxList)
            assert item["suggestion"] == [[b.x, b.y, b.w, b.h, b.label] for b in suggestion]
            assert (item["width"], item["height"]) == (width, height)
            assert isinstance(item["confidence"], float)
        # Enter on the model's boxes: stored as the suggestion accepted, exactly.
        item = browser.current
        suggestion, _ = s.suggest(item["item_id"])
        assert browser.press(item["suggestion"], source="suggestion")["type"] == "ack"
        last = s.store.events().iloc[-1]
        assert last["label"] == str(suggestion) and last["source"] == "suggestion"
        # What the model now thinks of an item the view kept through a reset.
        browser("suggest", item_id=browser.current["item_id"])
        message = browser.of_type("suggestion")[-1]
        now, _ = s.suggest(browser.current["item_id"])
        assert message["suggestion"] == [[b.x, b.y, b.w, b.h, b.label] for b in now]
        widget.close()
    finally:
        s.close()
