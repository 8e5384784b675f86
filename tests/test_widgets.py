"""LabelWidget without a browser: messages in, session calls, store events and replies out."""

from __future__ import annotations

import re
import time

import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from workbench.loaders import from_arrays, from_texts
from workbench.session import Session
from workbench.widgets import LabelWidget, _static_dir, class_keys


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.images, data.target


@pytest.fixture
def session(digits, tmp_path):
    X, y = digits
    pool = from_arrays(X[:150], y[:150], X_test=X[150:300], y_test=y[150:300], name="digits")
    s = Session(pool, store=tmp_path / "labels.wbstore", learner=LogisticRegression(max_iter=300))
    yield s
    s.close()


class Browser:
    """Stands in for the front end: sends messages the way label.js does, keeps the replies."""

    def __init__(self, widget: LabelWidget):
        self.widget = widget
        self.sent: list[dict] = []
        self.seq = 0
        widget.send = lambda content, buffers=None: self.sent.append(content)

    def __call__(self, type_: str, **content) -> dict | None:
        self.seq += 1
        n = len(self.sent)
        self.widget._on_msg(self.widget, {"type": type_, "seq": self.seq, **content}, [])
        replies = [m for m in self.sent[n:] if m.get("seq") == self.seq]
        return replies[-1] if replies else None

    def of_type(self, type_: str) -> list[dict]:
        return [m for m in self.sent if m["type"] == type_]

    def hello(self) -> list[str]:
        self("hello")
        return [i["item_id"] for i in self.of_type("reset")[-1]["items"]]


@pytest.fixture
def browser(session):
    widget = LabelWidget(session, buffer_size=6, charts=False)
    yield Browser(widget)
    widget.close()


def events(session) -> list[tuple]:
    log = session.store.events()
    return [(a, i, None if lab is None or lab != lab else lab)
            for a, i, lab in zip(log["action"], log["item_id"], log["label"], strict=True)]


def test_hello_sends_a_buffer_of_rendered_items(browser, session):
    ids = browser.hello()
    assert ids == [q.item_id for q in session.peek(6)]
    item = browser.of_type("reset")[-1]["items"][0]
    assert item["render"]["kind"] == "image" and item["render"]["mime"] == "image/png"
    assert item["render"]["width"] == 8 and len(item["render"]["data"]) > 20
    assert item["strategy"] == "cold-start" and item["reason"]
    assert item["suggestion"] is None and item["confidence"] is None


def test_label_message_is_durable_before_the_ack(browser, session):
    ids = browser.hello()
    reply = browser("label", item_id=ids[0], label="3")
    assert reply["type"] == "ack" and reply["action"] == "label" and reply["item_id"] == ids[0]
    assert events(session) == [("label", ids[0], "3")]
    assert session.labels[ids[0]] == 3
    assert browser.widget.progress["n_labeled"] == 1


def test_enter_records_an_accepted_suggestion(browser, session):
    ids = browser.hello()
    browser("label", item_id=ids[0], label="4", source="suggestion")
    assert session.store.events()["source"].tolist() == ["suggestion"]


def test_top_up_never_resends_an_item_the_browser_holds(browser, session):
    held = browser.hello()
    # Fast typing: the browser labels everything it holds before the first ack arrives,
    # so every label message is processed while the others are still in flight.
    in_flight = list(held)
    for k, item_id in enumerate(in_flight):
        browser("label", item_id=item_id, label=str(k % 10))
    delivered = [i["item_id"] for m in browser.sent if m["type"] in ("items", "ack")
                 for i in m.get("items") or []]
    assert len(delivered) == len(set(delivered)), "an item was sent twice"
    assert not set(delivered) & set(held), "an item already held or in flight was resent"
    # The browser is back to a full buffer, of the next unlabeled items in queue order.
    assert len(delivered) == browser.widget.buffer_size
    assert delivered == [q.item_id for q in session.peek(6)]


def test_prefetch_goes_out_before_the_durable_write(browser, session, monkeypatch):
    ids = browser.hello()
    order = []
    real_label = session.label
    monkeypatch.setattr(session, "label", lambda *a, **k: (order.append("label"),
                                                           real_label(*a, **k))[1])
    browser.widget.send = lambda content, buffers=None: (order.append(content["type"]),
                                                         browser.sent.append(content))
    browser("label", item_id=ids[0], label="1")
    assert order[:3] == ["items", "label", "ack"]


def test_bad_label_gets_an_error_reply_and_writes_nothing(browser, session):
    ids = browser.hello()
    reply = browser("label", item_id=ids[0], label="eleven")
    assert reply["type"] == "error" and reply["seq"] == browser.seq
    assert reply["item_id"] == ids[0] and reply["action"] == "label"
    assert "'eleven'" in reply["message"] and "classes" in reply["message"]
    assert "eleven" in browser.widget.error
    assert events(session) == []
    browser("label", item_id=ids[0], label="2")  # the next good action clears the error
    assert browser.widget.error == ""


def test_unknown_item_and_unknown_message_get_error_replies(browser, session):
    browser.hello()
    reply = browser("label", item_id="no-such-item", label="1")
    assert reply["type"] == "error" and "no-such-item" in reply["message"]
    reply = browser("frobnicate")
    assert reply["type"] == "error" and "frobnicate" in reply["message"]
    assert events(session) == []


def test_skip_and_undo_messages(browser, session):
    ids = browser.hello()
    browser("label", item_id=ids[0], label="1")
    reply = browser("skip", item_id=ids[1])
    assert reply["type"] == "ack" and reply["action"] == "skip"
    reply = browser("undo")
    assert reply["action"] == "undo" and reply["item_id"] == ids[1]
    assert reply["item"]["item_id"] == ids[1] and reply["item"]["render"]["kind"] == "image"
    reply = browser("undo")
    assert reply["item_id"] == ids[0]
    assert browser("undo")["item_id"] is None  # nothing left: an ack, not an error
    assert [a for a, _, _ in events(session)] == ["label", "skip", "undo", "undo"]
    assert session.labels == {}


def test_relabel_of_an_earlier_item(browser, session):
    ids = browser.hello()
    browser("label", item_id=ids[0], label="1")
    browser("label", item_id=ids[1], label="2")
    browser("label", item_id=ids[0], label="7")  # walked back with the arrow key
    assert events(session)[-1] == ("relabel", ids[0], "7")
    assert session.labels[ids[0]] == 7


def test_grid_page_and_label_page(browser, session):
    browser.hello()
    page = browser("page", n=12)["page"]
    assert len(page) == 12
    ids = [i["item_id"] for i in page]
    labels = [[ids[0], "5", "human"]] + [[i, "3", "human"] for i in ids[1:11]]
    reply = browser("label_page", labels=labels, skips=[ids[11]], n=12)
    assert reply["type"] == "ack" and len(reply["page"]) == 12
    assert not set(i["item_id"] for i in reply["page"]) & set(ids)
    assert events(session) == ([("label", ids[0], "5")] + [("label", i, "3") for i in ids[1:11]]
                               + [("skip", ids[11], None)])
    # The single-item buffer was replaced too, since the page moved the queue on.
    assert browser.of_type("reset")[-1]["reason"] == "page"


def test_public_methods_match_the_keys(browser, session):
    widget = browser.widget
    head = session.next().item_id
    assert widget.current["item_id"] == head
    widget.label(4)
    assert session.labels[head] == 4
    assert browser.of_type("reset")[-1]["replace_current"] is True
    skipped = session.next().item_id
    widget.skip()
    assert widget.undo() == skipped
    second = session.next().item_id
    widget.label_page({second: 2}, skips=[])
    assert [a for a, _, _ in events(session)] == ["label", "skip", "undo", "label"]
    with pytest.raises(ValueError, match="not one of the classes"):
        widget.label("x")


def test_retrain_in_the_background_resends_a_ranked_buffer(browser, session):
    ids = browser.hello()
    for k, item_id in enumerate(ids):
        browser("label", item_id=item_id, label=str(k % 3))
    future = browser.widget.retrain()
    future.result(timeout=60)
    deadline = time.monotonic() + 5
    while not any(m.get("reason") == "retrained" for m in browser.of_type("reset")):
        assert time.monotonic() < deadline, "no reset after retrain_finished"
        time.sleep(0.01)
    reset = [m for m in browser.of_type("reset") if m["reason"] == "retrained"][-1]
    assert reset["replace_current"] is False  # the item on screen stays
    assert all(i["suggestion"] is not None for i in reset["items"])
    assert reset["items"][0]["strategy"] == session.strategy_name == "diverse_margin"
    state = browser.widget.model_state
    assert state["rounds"] == 1 and state["training"] is False and state["last_accuracy"] > 0
    reply = browser("suggest", item_id=reset["items"][0]["item_id"])
    suggestion = browser.of_type("suggestion")[-1]
    assert reply is None and suggestion["suggestion"] == reset["items"][0]["suggestion"]


def test_failed_retrain_shows_the_error_and_keeps_the_labels(browser, session):
    ids = browser.hello()
    browser("label", item_id=ids[0], label="1")  # one class only: training must fail
    browser("retrain")
    deadline = time.monotonic() + 30
    while not browser.widget.error:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "retrain failed" in browser.widget.error and "2 classes" in browser.widget.error
    assert browser.widget.model_state["last_error"]
    assert session.labels == {ids[0]: 1}


def test_retrain_every_is_bound_to_the_session(browser, session):
    browser.widget.retrain_every = 5
    assert session.retrain_every == 5
    browser.widget.retrain_every = 0
    assert session.retrain_every is None
    session.retrain_every = 7
    assert LabelWidget(session, charts=False).retrain_every == 7


def test_unrenderable_item_is_an_error_payload_that_can_be_skipped(browser, session, monkeypatch):
    ids = browser.hello()
    monkeypatch.setattr(session.pool, "render", lambda item_id: 1 / 0)
    payload = browser.widget._payload(session.next())
    assert payload["render"] == {"kind": "error", "reason": "ZeroDivisionError: division by zero"}
    assert browser("skip", item_id=ids[0])["type"] == "ack"


def test_text_is_sent_as_data_not_html(tmp_path):
    text = '<img src=x onerror="window.__pwned=1">'
    pool = from_texts([text, "plain", "more plain"], item_ids=["xss", "a", "b"],
                      classes=["ok", "spam"])
    session = Session(pool, store=tmp_path / "t.wbstore", classes=["ok", "spam"],
                      learner=LogisticRegression())
    widget = LabelWidget(session, charts=False)
    assert widget._payload_for("xss", strategy="x", reason="y")["render"] == {
        "kind": "text", "text": text}
    assert widget.class_keys == ["1", "2"]


def test_class_keys():
    assert class_keys([str(d) for d in range(10)]) == [str(d) for d in range(10)]
    assert class_keys([str(d) for d in range(10)], "position") == list("1234567890")
    names = [f"c{i}" for i in range(12)]
    assert class_keys(names) == list("1234567890") + ["", ""]
    with pytest.raises(ValueError, match="keys must be"):
        class_keys(names, "qwerty")


def test_front_end_files_and_scoped_css():
    static = _static_dir()
    js = (static / "label.js").read_text()
    assert "export default" in js and "stopPropagation" in js
    assert "innerHTML" not in js  # data goes in with textContent only
    css = (static / "label.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]
    assert selectors and all(s.startswith(".wb-label") for s in selectors), selectors


def _view_model_id(widget) -> str:
    bundle = widget._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle  # (data, metadata) or data
    return data["application/vnd.jupyter.widget-view+json"]["model_id"]


def test_session_widget_and_display_with_charts(session):
    widget = session.widget(charts=False)
    assert isinstance(widget, LabelWidget)
    assert _view_model_id(widget) == widget.model_id
    with_charts = session.widget()
    try:
        box = _view_model_id(with_charts)
        assert box != with_charts.model_id  # a VBox of the widget and the dashboard
        assert with_charts.dashboard is with_charts.dashboard
    finally:
        with_charts.close()
        widget.close()
