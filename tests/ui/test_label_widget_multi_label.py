"""LabelWidget on a multi-label session, without a browser: a label is a list of class names
both ways, the browser's event ids and roles are stored as for one class, and a bad value is
an error that writes nothing. `Browser` (tests/ui/test_label_widget.py) stands in for the
front end; the real one is tested in tests/browser/test_label_widget_multi_label.py."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import traitlets
from sklearn.datasets import load_digits
from test_label_widget import Browser, events

from workbench import Pool, Session
from workbench.data.tasks import LabelSet
from workbench.learn.multilabel import MultiLabelHead
from workbench.ui.label_payload import label_names, label_now, returned_payload
from workbench.ui.label_widget import LabelWidget

CLASSES = ["big", "even", "odd", "round"]


def digit_sets(targets):
    """Each digit's classes: its parity, "big" from 5 up, "round" for 0, 6, 8 and 9."""
    return [["odd" if t % 2 else "even"] + (["big"] if t >= 5 else [])
            + (["round"] if t in (0, 6, 8, 9) else []) for t in targets]


@pytest.fixture(scope="module")
def pool():
    d = load_digits()
    return Pool.from_arrays(d.images[:200], digit_sets(d.target[:200]), task="multi_label",
                            name="digit-sets")


@pytest.fixture
def session(pool, tmp_path):
    s = Session(pool, store=tmp_path / "labels.wbstore", learner=MultiLabelHead(classes=CLASSES))
    yield s
    s.close()


@pytest.fixture
def browser(session):
    widget = LabelWidget(session, buffer_size=6, charts=False)
    yield Browser(widget)
    widget.close()


def truth(pool, item_id) -> list[str]:
    return [str(c) for c in pool.true_label(item_id)]


def test_the_widget_knows_the_task_and_offers_no_grid(browser, session, tmp_path):
    widget = browser.widget
    assert session.task == "multi_label" and widget.task == "multi_label"
    assert widget.class_names == CLASSES and widget.class_keys == ["1", "2", "3", "4"]
    with pytest.raises(traitlets.TraitError, match="the grid labels one class per item"):
        widget.mode = "grid"
    assert widget.mode == "single"
    d = load_digits()
    single = Session(Pool.from_arrays(d.images[:40], d.target[:40]), store=tmp_path / "one.wbstore")
    try:
        one = LabelWidget(single, charts=False)
        assert one.task == "single"
        one.mode = "grid"  # one class per item: the grid is there
        one.close()
    finally:
        single.close()


def test_a_list_is_stored_as_that_set_with_the_event_id_and_role_the_browser_sent(browser, session):
    ids = browser.hello()
    first = browser.of_type("reset")[-1]["items"][0]
    assert first["suggestion"] is None and first["given"] is None  # no model, no label yet
    event_id = uuid.uuid4().hex
    reply = browser("label", item_id=ids[0], label=["round", "odd"], source="human",
                    query=first["strategy"], event_id=event_id)
    assert reply["type"] == "ack" and reply["action"] == "label" and reply["event_ids"] == [event_id]
    assert events(session) == [("label", ids[0], '["odd", "round"]')]  # in class order
    stored = session.store.events().iloc[0]
    assert stored["event_id"] == event_id and stored["query"] == "cold-start"
    assert stored["source"] == "human"
    assert session.label_of(ids[0]) == LabelSet(["odd", "round"])
    assert browser.widget.progress["n_labeled"] == 1 and browser.widget.error == ""
    # Enter on the model's set untouched: recorded as the suggestion accepted.
    browser("label", item_id=ids[1], label=["even"], source="suggestion", query="cold-start")
    assert session.store.events()["source"].tolist() == ["human", "suggestion"]


def test_an_empty_list_is_a_label_no_class_applies(browser, session):
    ids = browser.hello()
    reply = browser.press([])
    assert reply["type"] == "ack"
    assert events(session) == [("label", ids[0], "[]")]
    assert session.label_of(ids[0]) == LabelSet() and session.is_done(ids[0])


@pytest.mark.parametrize(("value", "says"), [
    ("odd", "a multi-label label is a list of class names"),
    (None, "a multi-label label is a list of class names"),
    (["odd", "purple"], "not among the classes"),
    (["odd", "odd"], "more than once"),
    ('["odd"]', "a multi-label label is a list of class names"),
])
def test_a_bad_value_is_an_error_and_stores_nothing(browser, session, value, says):
    ids = browser.hello()
    held = browser.holding()
    reply = browser("label", item_id=ids[0], label=value, query="cold-start",
                    event_id=uuid.uuid4().hex)
    assert reply["type"] == "error" and reply["action"] == "label" and reply["item_id"] == ids[0]
    assert says in reply["message"] and says in browser.widget.error
    assert browser.widget.error.startswith("label failed: ValueError: ")
    assert events(session) == [] and not session.is_done(ids[0])
    assert browser.holding() == held  # nothing was prefetched in its place
    browser("label", item_id=ids[0], label=["even"], query="cold-start")  # a good one clears it
    assert browser.widget.error == "" and events(session) == [("label", ids[0], '["even"]')]


def test_undo_takes_back_exactly_the_set_and_the_item_comes_back_unlabeled(browser, session):
    ids = browser.hello()
    browser.press(["big", "odd"])
    browser.press(["even"])
    reply = browser.undo()
    assert reply["type"] == "ack" and [p["item_id"] for p in reply["undone"]] == [ids[1]]
    assert reply["undone"][0]["given"] is None
    assert events(session) == [("label", ids[0], '["big", "odd"]'), ("label", ids[1], '["even"]'),
                               ("undo", ids[1], None)]
    assert session.label_of(ids[1]) is None and session.label_of(ids[0]) == LabelSet(["big", "odd"])


def test_the_public_label_method_takes_a_list_and_refuses_one_class(browser, session):
    widget = browser.widget
    head = session.next().item_id
    with pytest.raises(ValueError, match="takes a list of classes"):
        widget.label("odd", head)
    assert events(session) == []
    event = widget.label(["odd", "big"], head)
    assert event.label == '["big", "odd"]' and session.label_of(head) == LabelSet(["big", "odd"])
    assert widget.label([]).label == "[]"  # the head of the queue, no class


def test_a_label_and_a_suggestion_go_to_the_browser_as_lists(browser, session, pool, monkeypatch):
    ids = browser.hello()
    for item_id in list(ids):
        browser.press(truth(pool, item_id))
    ids = [q.item_id for q in session.peek(20)]
    session.label_many({i: truth(pool, i) for i in ids})
    browser.widget.retrain().result(timeout=60)
    deadline = time.monotonic() + 10  # the retrain sends a ranked buffer, from its own thread
    while not [m for m in browser.of_type("reset") if m["reason"] == "retrained"]:
        assert time.monotonic() < deadline, "no buffer was sent after the retrain"
        time.sleep(0.02)
    items = [m for m in browser.of_type("reset") if m["reason"] == "retrained"][-1]["items"]
    assert items and all(isinstance(i["suggestion"], list) for i in items)
    assert all(set(i["suggestion"]) <= set(CLASSES) for i in items)
    assert all(isinstance(i["confidence"], float) and i["given"] is None for i in items)
    labeled = ids[0]
    assert label_now(session, labeled) == truth(pool, labeled)
    back = returned_payload(session, labeled, reason="brought back by undo")
    assert back["given"] == truth(pool, labeled)
    # What the model now thinks of an item the view kept through a reset: a list as well.
    monkeypatch.setattr(session, "suggest", lambda item_id: (LabelSet(["big", "even"]), 0.8))
    browser("suggest", item_id=items[0]["item_id"])
    message = browser.of_type("suggestion")[-1]
    assert message["suggestion"] == ["big", "even"] and message["confidence"] == 0.8
    monkeypatch.setattr(session, "suggest", lambda item_id: (LabelSet(), 0.9))
    browser("suggest", item_id=items[0]["item_id"])
    assert browser.of_type("suggestion")[-1]["suggestion"] == []  # no class applies


def test_label_names(session):
    assert label_names(session, None) is None
    assert label_names(session, LabelSet(["even", "round"])) == ["even", "round"]
    assert label_names(session, '["odd", "big"]') == ["big", "odd"]  # as the store holds it
    assert label_names(session, LabelSet()) == []
    assert label_names(session, "odd") is None  # one class is no set to pre-select


def test_a_review_confirm_must_name_the_set_the_item_has(browser, session):
    ids = browser.hello()
    browser.press(["odd"])
    n = len(events(session))
    reply = browser("confirm", item_id=ids[0], label=["even"], query="cold-start",
                    event_id=uuid.uuid4().hex)
    assert reply["type"] == "error" and "was shown to keep the classes ['even']" in reply["message"]
    assert "label is now ['odd']" in reply["message"] and len(events(session)) == n


def test_a_page_of_sets_from_the_kernel_side(browser, session):
    ids = browser.hello()
    eid = uuid.uuid4().hex
    reply = browser("label_page", labels=[[ids[0], ["even", "big"], "human", "cold-start", eid]],
                    skips=[], n=4)
    assert reply["type"] == "ack" and reply["event_ids"] == [eid]
    assert json.loads(events(session)[0][2]) == ["big", "even"]
